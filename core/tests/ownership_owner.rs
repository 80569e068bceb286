//! The partition owner machine: the exact actions of joins, leaves,
//! restarts, lost renewals and repartitions.

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_core::lease::MonoTime;
use rillflow_core::ownership::{Action, Holder, Input, OwnerTiming, PartitionOwner};

const TIMING: OwnerTiming = OwnerTiming {
    heartbeat: Duration::from_secs(1),
    ttl: Duration::from_secs(3),
};

fn t(ms: u64) -> MonoTime {
    MonoTime::from_origin(Duration::from_millis(ms))
}

fn drain(m: &mut PartitionOwner) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn holders(list: &[(u32, &str, u64)]) -> BTreeMap<u32, Holder> {
    list.iter()
        .map(|(p, w, e)| {
            (
                *p,
                Holder {
                    worker: w.to_string(),
                    epoch: *e,
                },
            )
        })
        .collect()
}

fn viewed(partitions: u32, workers: &[&str], held: &[(u32, &str, u64)]) -> Input {
    Input::Viewed {
        partitions,
        workers: names(workers),
        holders: holders(held),
        sessions: BTreeMap::new(),
        ended: BTreeMap::new(),
    }
}

/// [`viewed`] in which every live worker's registration names a session:
/// worker `w` under key `session_key(w)`.
fn viewed_with_sessions(partitions: u32, workers: &[&str], held: &[(u32, &str, u64)]) -> Input {
    Input::Viewed {
        partitions,
        workers: names(workers),
        holders: holders(held),
        sessions: keys(workers),
        ended: BTreeMap::new(),
    }
}

/// [`viewed_with_sessions`] without leases that also lists `dead` as
/// workers whose session ended within their ttl.
fn viewed_with_dead(partitions: u32, workers: &[&str], dead: &[&str]) -> Input {
    Input::Viewed {
        partitions,
        workers: names(workers),
        holders: BTreeMap::new(),
        sessions: keys(workers),
        ended: keys(dead),
    }
}

fn keys(workers: &[&str]) -> BTreeMap<String, i64> {
    workers
        .iter()
        .map(|w| (w.to_string(), session_key(w)))
        .collect()
}

fn session_key(worker: &str) -> i64 {
    worker.bytes().fold(7, |k, b| k * 31 + i64::from(b))
}

fn claim(p: u32) -> Action {
    Action::Claim { partition: p }
}

fn renew(p: u32, epoch: u64) -> Action {
    Action::Renew {
        partition: p,
        epoch,
    }
}

fn release(p: u32, epoch: u64) -> Action {
    Action::Release {
        partition: p,
        epoch,
    }
}

/// A worker "a" that owns partitions 0..4 under epochs 10..14 after its
/// first round at time 0.
fn owning_four() -> PartitionOwner {
    let mut m = PartitionOwner::new("a", TIMING, t(0));
    m.handle(t(0), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    m.handle(t(5), viewed(4, &["a"], &[]));
    assert_eq!(drain(&mut m), vec![claim(0), claim(1), claim(2), claim(3)]);
    for p in 0..4 {
        m.handle(
            t(10),
            Input::Claimed {
                partition: p,
                epoch: Some(10 + u64::from(p)),
            },
        );
    }
    assert_eq!(m.owned(t(10)), vec![(0, 10), (1, 11), (2, 12), (3, 13)]);
    m
}

#[test]
fn a_lone_worker_claims_everything_and_renews_every_round() {
    let mut m = owning_four();
    assert_eq!(m.poll_timeout(), Some(t(1000)));
    m.handle(t(999), Input::Tick);
    assert!(drain(&mut m).is_empty(), "a spurious tick does nothing");
    m.handle(t(1000), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    m.handle(
        t(1010),
        viewed(
            4,
            &["a"],
            &[(0, "a", 10), (1, "a", 11), (2, "a", 12), (3, "a", 13)],
        ),
    );
    assert_eq!(
        drain(&mut m),
        vec![renew(0, 10), renew(1, 11), renew(2, 12), renew(3, 13)]
    );
}

#[test]
fn a_worker_gives_up_what_a_newcomer_should_have_and_keeps_running_the_rest() {
    let mut m = owning_four();
    m.handle(t(1000), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    m.handle(
        t(1010),
        viewed(
            4,
            &["a", "b"],
            &[(0, "a", 10), (1, "a", 11), (2, "a", 12), (3, "a", 13)],
        ),
    );
    assert_eq!(
        drain(&mut m),
        vec![release(3, 13), release(2, 12), renew(0, 10), renew(1, 11)]
    );
    assert_eq!(m.owned(t(1010)), vec![(0, 10), (1, 11)]);
}

#[test]
fn a_newcomer_claims_only_free_partitions() {
    let mut b = PartitionOwner::new("b", TIMING, t(0));
    b.handle(t(0), Input::Tick);
    assert_eq!(drain(&mut b), vec![Action::Sync]);
    b.handle(
        t(1),
        viewed(4, &["a", "b"], &[(0, "a", 1), (1, "a", 1), (2, "a", 1)]),
    );
    assert_eq!(drain(&mut b), vec![claim(3)]);
    b.handle(
        t(2),
        Input::Claimed {
            partition: 3,
            epoch: None,
        },
    );
    assert!(b.owned(t(2)).is_empty(), "someone else got it first");
}

#[test]
fn a_restarted_worker_frees_its_earlier_incarnations_leases_then_claims() {
    let mut m = PartitionOwner::new("a", TIMING, t(0));
    m.handle(t(0), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    m.handle(t(1), viewed(2, &["a"], &[(0, "a", 7), (1, "a", 8)]));
    assert_eq!(
        drain(&mut m),
        vec![release(0, 7), release(1, 8), claim(0), claim(1)]
    );
}

#[test]
fn a_lease_not_renewed_in_time_is_no_longer_run() {
    let mut m = owning_four();
    // Round 2 starts at 1000 but the database never answers.
    m.handle(t(1000), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    // Claims were judged from the first round's start (0): belief ends at 3000.
    assert_eq!(m.may_run(t(2999), 0), Some(10));
    m.handle(t(3000), Input::Tick);
    assert_eq!(m.may_run(t(3000), 0), None);
    assert!(m.owned(t(3000)).is_empty());
    assert!(drain(&mut m).is_empty(), "the round is still waiting");
    // A ttl after it began, the stalled round is given up and a new one starts.
    assert_eq!(m.poll_timeout(), Some(t(4000)));
    m.handle(t(4000), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
}

#[test]
fn a_refused_renewal_or_batch_drops_the_partition() {
    let mut m = owning_four();
    m.handle(t(1000), Input::Tick);
    let _ = drain(&mut m);
    m.handle(
        t(1010),
        viewed(
            4,
            &["a"],
            &[(0, "a", 10), (1, "a", 11), (2, "a", 12), (3, "a", 13)],
        ),
    );
    let _ = drain(&mut m);
    m.handle(
        t(1020),
        Input::Renewed {
            partition: 0,
            epoch: 10,
            held: false,
        },
    );
    m.handle(
        t(1020),
        Input::Renewed {
            partition: 1,
            epoch: 11,
            held: true,
        },
    );
    m.handle(
        t(1030),
        Input::Fenced {
            partition: 2,
            epoch: 12,
        },
    );
    // A fence report for an epoch no longer held changes nothing.
    m.handle(
        t(1030),
        Input::Fenced {
            partition: 3,
            epoch: 99,
        },
    );
    assert_eq!(m.owned(t(1030)), vec![(1, 11), (3, 13)]);
    // Partition 1 was renewed in the round that began at 1000.
    assert_eq!(m.may_run(t(3999), 1), Some(11));
    assert_eq!(m.may_run(t(3999), 3), None, "3's renewal never answered");
}

#[test]
fn fewer_partitions_releases_the_ones_beyond() {
    let mut m = owning_four();
    m.handle(t(1000), Input::Tick);
    let _ = drain(&mut m);
    m.handle(
        t(1010),
        viewed(
            2,
            &["a"],
            &[(0, "a", 10), (1, "a", 11), (2, "a", 12), (3, "a", 13)],
        ),
    );
    assert_eq!(
        drain(&mut m),
        vec![release(2, 12), release(3, 13), renew(0, 10), renew(1, 11)]
    );
}

#[test]
fn leases_the_database_freed_are_claimed_again_in_the_same_round() {
    // A repartition freed every lease: the view shows none of them.
    let mut m = owning_four();
    m.handle(t(1000), Input::Tick);
    let _ = drain(&mut m);
    m.handle(t(1010), viewed(6, &["a"], &[(1, "a", 11)]));
    assert_eq!(
        drain(&mut m),
        vec![
            claim(0),
            claim(2),
            claim(3),
            claim(4),
            claim(5),
            renew(1, 11)
        ]
    );
    assert_eq!(
        m.owned(t(1010)),
        vec![(1, 11)],
        "beliefs the view denies are gone"
    );
}

#[test]
fn a_failed_call_ends_the_round_but_releases_still_go_out() {
    let mut m = owning_four();
    m.handle(t(1000), Input::Tick);
    let _ = drain(&mut m);
    m.handle(
        t(1010),
        viewed(
            4,
            &["a", "b"],
            &[(0, "a", 10), (1, "a", 11), (2, "a", 12), (3, "a", 13)],
        ),
    );
    // The adapter performed the first release, then a call failed.
    assert_eq!(m.poll_action(), Some(release(3, 13)));
    m.handle(t(1020), Input::Failed);
    assert_eq!(drain(&mut m), vec![release(2, 12)]);
    m.handle(t(2000), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
}

#[test]
fn shutdown_releases_everything_then_leaves() {
    let mut m = owning_four();
    m.handle(t(50), Input::Shutdown);
    assert_eq!(
        drain(&mut m),
        vec![
            release(0, 10),
            release(1, 11),
            release(2, 12),
            release(3, 13),
            Action::Leave
        ]
    );
    assert!(m.is_stopped());
    assert_eq!(m.poll_timeout(), None);
    m.handle(t(60), Input::Tick);
    assert!(drain(&mut m).is_empty());
}

#[test]
fn bad_timings_are_refused() {
    assert!(TIMING.validate().is_ok());
    let tight = OwnerTiming {
        heartbeat: Duration::from_secs(2),
        ttl: Duration::from_secs(3),
    };
    assert!(tight.validate().is_err());
}

#[test]
fn a_peer_change_starts_a_round_now_or_right_after_the_current_one() {
    let mut m = owning_four();
    // Idle between rounds: sync at once instead of at 1000.
    m.handle(t(200), Input::PeerChanged);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    // During a round: once every answer is in, another round follows.
    m.handle(t(210), Input::PeerChanged);
    assert!(drain(&mut m).is_empty(), "one round at a time");
    m.handle(
        t(220),
        viewed(
            4,
            &["a"],
            &[(0, "a", 10), (1, "a", 11), (2, "a", 12), (3, "a", 13)],
        ),
    );
    let renewals = drain(&mut m);
    assert_eq!(renewals.len(), 4);
    for p in 0..3 {
        let epoch = 10 + u64::from(p);
        m.handle(
            t(230),
            Input::Renewed {
                partition: p,
                epoch,
                held: true,
            },
        );
    }
    assert!(drain(&mut m).is_empty(), "one answer still out");
    m.handle(
        t(240),
        Input::Renewed {
            partition: 3,
            epoch: 13,
            held: true,
        },
    );
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    // Without another change, the next round waits for the heartbeat.
    m.handle(t(250), viewed(4, &["a"], &[]));
    let _ = drain(&mut m);
    for p in 0..4 {
        let epoch = 10 + u64::from(p);
        m.handle(
            t(260),
            Input::Renewed {
                partition: p,
                epoch,
                held: true,
            },
        );
    }
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.poll_timeout(), Some(t(1240)));
}

#[test]
fn a_batch_on_an_owned_partition_leaves_a_round_for_the_renewal() {
    let timing = |hb, ttl| OwnerTiming {
        heartbeat: Duration::from_secs(hb),
        ttl: Duration::from_secs(ttl),
    };
    assert_eq!(timing(5, 30).batch_budget(), Duration::from_secs(10));
    // At the tightest valid timing a batch still gets a heartbeat.
    assert_eq!(timing(1, 2).batch_budget(), Duration::from_secs(1));
}

#[test]
fn a_worker_watches_the_next_live_session_by_name_as_the_view_changes() {
    let mut m = owning_four();
    assert_eq!(m.session_to_watch(), None, "no view named a session yet");
    // One view per round; what the rounds ask for is not the point here.
    let round = |m: &mut PartitionOwner, at: u64, view: Input| {
        m.handle(t(at), Input::Tick);
        let _ = drain(m);
        m.handle(t(at + 10), view);
        let _ = drain(m);
        m.handle(t(at + 20), Input::Failed);
    };
    round(&mut m, 1000, viewed_with_sessions(4, &["a", "b", "c"], &[]));
    assert_eq!(m.session_to_watch(), Some(session_key("b")));
    // b died: its session is gone from the next view; a watches c now.
    round(&mut m, 2000, viewed_with_sessions(4, &["a", "c"], &[]));
    assert_eq!(m.session_to_watch(), Some(session_key("c")));
    // A view without sessions (ttl-only registrations): nothing to watch.
    round(&mut m, 3000, viewed(4, &["a", "c"], &[]));
    assert_eq!(m.session_to_watch(), None);
}

#[test]
fn a_claim_lost_to_another_worker_is_made_up_from_the_rest_of_the_free_list() {
    // A peer holding 0..4 died; "a" and "b" were both told at once and read
    // the same view: both claim 0 and 1 first.
    let mut m = PartitionOwner::new("a", TIMING, t(0));
    m.handle(t(0), Input::Tick);
    assert_eq!(drain(&mut m), vec![Action::Sync]);
    m.handle(t(5), viewed(4, &["a", "b"], &[]));
    assert_eq!(drain(&mut m), vec![claim(0), claim(1)]);
    let lost = |p| Input::Claimed {
        partition: p,
        epoch: None,
    };
    m.handle(t(6), lost(0));
    assert_eq!(drain(&mut m), vec![claim(2)], "the next free one instead");
    m.handle(
        t(7),
        Input::Claimed {
            partition: 1,
            epoch: Some(5),
        },
    );
    m.handle(t(8), lost(2));
    assert_eq!(drain(&mut m), vec![claim(3)]);
    m.handle(
        t(9),
        Input::Claimed {
            partition: 3,
            epoch: Some(6),
        },
    );
    assert!(drain(&mut m).is_empty(), "the round is over");
    assert_eq!(m.owned(t(10)), vec![(1, 5), (3, 6)]);
    assert_eq!(m.poll_timeout(), Some(t(1000)), "no extra round");
}

#[test]
fn losses_end_with_the_free_list() {
    let mut m = PartitionOwner::new("a", TIMING, t(0));
    m.handle(t(0), Input::Tick);
    let _ = drain(&mut m);
    m.handle(t(5), viewed(3, &["a", "b"], &[]));
    assert_eq!(drain(&mut m), vec![claim(0), claim(1)]);
    for p in [0, 1, 2] {
        m.handle(
            t(6),
            Input::Claimed {
                partition: p,
                epoch: None,
            },
        );
    }
    assert_eq!(drain(&mut m), vec![claim(2)], "only 2 was left to try");
    assert!(m.owned(t(7)).is_empty());
}

/// One round of `m` at `at` that reads `view`; the actions it asked for.
fn round_with(m: &mut PartitionOwner, at: u64, view: Input) -> Vec<Action> {
    m.handle(t(at), Input::Tick);
    assert_eq!(drain(m), vec![Action::Sync]);
    m.handle(t(at + 10), view);
    let actions = drain(m);
    m.handle(t(at + 20), Input::Failed);
    actions
}

#[test]
fn a_peer_found_dead_is_announced_once_by_its_watcher_only() {
    // "c" died before anyone watched it (it had just joined): "b", whose
    // next by name it is, announces it, first thing; "a" and "d" do not.
    for (me, announces) in [("a", false), ("b", true), ("d", false)] {
        let mut m = PartitionOwner::new(me, TIMING, t(0));
        let others: Vec<&str> = ["a", "b", "d"].into_iter().collect();
        let first = round_with(&mut m, 0, viewed_with_dead(4, &others, &["c"]));
        assert_eq!(
            first.first() == Some(&Action::Announce),
            announces,
            "{me}: {first:?}"
        );
        assert_eq!(
            first.iter().filter(|a| **a == Action::Announce).count(),
            usize::from(announces)
        );
        let again = round_with(&mut m, 1000, viewed_with_dead(4, &others, &["c"]));
        assert!(!again.contains(&Action::Announce), "{me}: once: {again:?}");
    }
    // The last by name wraps around to the first.
    let mut d = PartitionOwner::new("d", TIMING, t(0));
    let first = round_with(&mut d, 0, viewed_with_dead(4, &["b", "d"], &["a"]));
    assert_eq!(first.first(), Some(&Action::Announce));
}

#[test]
fn a_peer_end_the_waiter_announced_is_not_announced_again() {
    let mut m = PartitionOwner::new("b", TIMING, t(0));
    let _ = round_with(&mut m, 0, viewed_with_sessions(4, &["a", "b", "c"], &[]));
    assert_eq!(m.session_to_watch(), Some(session_key("c")));
    m.handle(
        t(100),
        Input::PeerSessionEnded {
            key: session_key("c"),
        },
    );
    assert!(drain(&mut m).is_empty(), "its announcement wakes b too");
    let next = round_with(&mut m, 1000, viewed_with_dead(4, &["a", "b"], &["c"]));
    assert!(!next.contains(&Action::Announce), "{next:?}");
    assert_eq!(m.session_to_watch(), Some(session_key("a")));
}

#[test]
fn a_stopped_worker_watches_nobody() {
    let mut m = owning_four();
    m.handle(t(1000), Input::Tick);
    let _ = drain(&mut m);
    m.handle(t(1010), viewed_with_sessions(4, &["a", "b"], &[]));
    assert_eq!(m.session_to_watch(), Some(session_key("b")));
    m.handle(t(1020), Input::Shutdown);
    assert_eq!(m.session_to_watch(), None);
}
