//! LEASE-3: once the faults are healed, some node holds a valid lease and
//! believes it may write, within the bound.

use std::time::Duration;

use crate::harness::faults::{Fault, FREEZE_START};
use crate::harness::trace::Belief;
use crate::model::lease::records::{GrantRecord, WriteRecord};

use super::session_takeover::SessionTakeover;
use super::Violation;

/// Checks at `deadline` that `leader` (the database's valid lease holder
/// then, if any) is also the node whose latest belief is that epoch.
pub fn check(
    healed_at: Duration,
    deadline: Duration,
    leader: Option<(String, u64)>,
    beliefs: &[(String, Belief)],
) -> Option<Violation> {
    let fail = |detail: String| Violation {
        invariant: "LEASE-3",
        at: deadline,
        detail,
    };
    let Some((node, epoch)) = leader else {
        return Some(fail(format!(
            "no node holds a valid lease {:.3}s after the faults healed at {:.3}s",
            (deadline - healed_at).as_secs_f64(),
            healed_at.as_secs_f64()
        )));
    };
    let latest = beliefs
        .iter()
        .rev()
        .find(|(n, _)| *n == node)
        .map(|(_, b)| *b);
    match latest {
        Some(b) if b.epoch == Some(epoch) && b.until > deadline => None,
        other => Some(fail(format!(
            "{node} holds epoch {epoch} in the database but its latest belief is {other:?}"
        ))),
    }
}

/// LEASE-3's bound after a graceful stop.
pub const GRACEFUL: Duration = Duration::from_secs(1);

/// The node a fault silences.
fn silenced(fault: &Fault) -> Option<&str> {
    match fault {
        Fault::Crash(n) | Fault::Stop(n) | Fault::Partition(n) | Fault::Freeze { node: n, .. } => {
            Some(n)
        }
        Fault::FreezeInTransaction { node: n, .. } => Some(n),
        _ => None,
    }
}

fn ends(fault: &Fault, node: &str) -> bool {
    matches!(fault, Fault::Restart(n) | Fault::Repair(n) | Fault::Thaw(n) | Fault::Release(n) if n == node)
}

/// The host a fault is applied to (`db` for the database's).
fn host(fault: &Fault) -> Option<&str> {
    match fault {
        Fault::CrashDb | Fault::RestartDb => Some("db"),
        Fault::Restart(n)
        | Fault::Repair(n)
        | Fault::Release(n)
        | Fault::Thaw(n)
        | Fault::EndSession(n) => Some(n),
        other => affects(other),
    }
}

/// Any fault that affects `node`'s link or process.
fn affects(fault: &Fault) -> Option<&str> {
    match fault {
        Fault::PartitionToDb(n) | Fault::PartitionFromDb(n) | Fault::Hold(n) => Some(n),
        other => silenced(other),
    }
}

/// True when an earlier fault on `node` (or the database) is still in
/// force at `at`: then the bound does not apply, since it assumes nothing
/// else stands in the way.
fn disturbed(faults: &[(Duration, Fault)], i: usize, node: &str, at: Duration) -> bool {
    faults[..i].iter().enumerate().any(|(j, (_, f))| {
        let on_node = affects(f) == Some(node);
        let on_db = matches!(f, Fault::CrashDb);
        let undone = faults[j + 1..].iter().find(|(_, g)| {
            if on_db {
                matches!(g, Fault::RestartDb)
            } else {
                ends(g, node)
            }
        });
        (on_node || on_db) && undone.is_none_or(|(t, _)| *t > at)
    })
}

/// When the silence of `faults[i]` really began and ended: a freeze inside
/// a transaction begins when the node's next write arrives (if it does
/// within [`FREEZE_START`]) and lasts its length; the others run from the
/// fault to the fault that undoes it.
fn silence(
    faults: &[(Duration, Fault)],
    i: usize,
    freezes: &[(String, Duration)],
) -> Option<(Duration, Duration)> {
    let (planned, fault) = &faults[i];
    let node = silenced(fault)?;
    if let Fault::FreezeInTransaction { length_ms, .. } = fault {
        let began = freezes
            .iter()
            .find(|(n, at)| n == node && at >= planned && *at <= *planned + FREEZE_START)
            .map(|(_, at)| *at)?;
        return Some((began, began + Duration::from_millis(*length_ms)));
    }
    let end = faults[i + 1..]
        .iter()
        .find(|(_, f)| ends(f, node))
        .map(|(t, _)| *t)?;
    Some((*planned, end))
}

/// LEASE-3 during the faults: when the active hot node is silenced (crash,
/// partition, freeze, freeze holding a lock) for longer than `bound`, some
/// other node is granted the lease within `bound` of the silence; when it is
/// stopped gracefully, within one second. Faults
/// come one at a time, so nothing else stands in the way; healing ends a
/// silence early. "Active" means it
/// held the latest grant and committed a write in the second before, in
/// its current incarnation: a node restarted after a crash comes back cold,
/// and stopping it hands nothing over (its old lease runs out instead).
///
/// Standbys that released a lease themselves just before are held off
/// (`demote_holdoff`); when every running one is, the bound runs from the
/// first hold-off's end (known from `sessions`' releases).
///
/// With session-bound leases (`sessions`), a crash ends the hot node's lease
/// session, and another node must be granted the lease within the bound
/// [`SessionTakeover::deadline`] derives; so must some node (it may be the
/// same one) after the database ended the active hot node's session while
/// it ran (`EndSession`).
pub fn check_takeovers(
    faults: &[(Duration, Fault)],
    freezes: &[(String, Duration)],
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    bound: Duration,
    healed_at: Duration,
    sessions: Option<&SessionTakeover>,
) -> Option<Violation> {
    for (i, (at, fault)) in faults.iter().enumerate() {
        if let (Fault::EndSession(node), Some(s)) = (fault, sessions) {
            if disturbed(faults, i, node, *at)
                || !was_active(faults, i, node, *at, grants, writes)
                || released(sessions, node, *at, grants)
            {
                continue;
            }
            let Some(deadline) = s.deadline(faults, i, node, grants) else {
                continue;
            };
            // Nothing undoes it: the bound holds while no other fault on a
            // node or the database comes first.
            let interrupted = faults[i + 1..].iter().any(|(t, f)| {
                *t < deadline
                    && host(f).is_some_and(|h| h == "db" || s.nodes.iter().any(|n| n == h))
            });
            if interrupted {
                continue;
            }
            if !grants.iter().any(|g| g.at > *at && g.at <= deadline) {
                return Some(late(node, fault, *at, deadline));
            }
            continue;
        }
        let Some(node) = silenced(fault) else {
            continue;
        };
        let Some((start, end)) = silence(faults, i, freezes) else {
            continue;
        };
        // Healing ends every fault, a freeze the database host was to end too.
        let end = end.min(healed_at);
        if disturbed(faults, i, node, start) {
            continue;
        }
        let deadline = match (fault, sessions) {
            // A graceful stop releases the lease and wakes the standbys:
            // one second, not the crash bound.
            (Fault::Stop(_), _) => start + GRACEFUL,
            // The crash ended its lease session.
            (Fault::Crash(_), Some(s)) => match s.deadline(faults, i, node, grants) {
                Some(deadline) => deadline,
                None => continue,
            },
            _ => start + bound,
        };
        // Every standby gave a lease up just before (a demotion, a
        // handoff): none asks before its hold-off ends.
        let deadline = match sessions.and_then(|s| s.all_held_off(faults, i, node, grants)) {
            Some(held) => deadline.max(held),
            None => deadline,
        };
        if end < deadline
            || !was_active(faults, i, node, start, grants, writes)
            || released(sessions, node, start, grants)
        {
            continue;
        }
        let took_over = grants
            .iter()
            .any(|g| g.node != node && g.at > start && g.at <= deadline);
        if !took_over {
            return Some(late(node, fault, start, deadline));
        }
    }
    None
}

/// Whether `node` released its latest grant before `at` (an operator's
/// demotion, say): then it holds nothing a fault could take from it, and
/// its hold-off, not the fault, decides when it asks again.
fn released(
    sessions: Option<&SessionTakeover>,
    node: &str,
    at: Duration,
    grants: &[GrantRecord],
) -> bool {
    let Some(granted) = grants
        .iter()
        .rev()
        .find(|g| g.node == node && g.at <= at)
        .map(|g| g.at)
    else {
        return false;
    };
    sessions.is_some_and(|s| {
        s.releases
            .iter()
            .any(|(n, t)| n == node && *t >= granted && *t <= at)
    })
}

fn late(node: &str, fault: &Fault, start: Duration, deadline: Duration) -> Violation {
    Violation {
        invariant: "LEASE-3",
        at: deadline,
        detail: format!(
            "{node} was silenced at {:.3}s by {fault:?} and nobody took over within {:.3}s",
            start.as_secs_f64(),
            (deadline - start).as_secs_f64()
        ),
    }
}

/// Whether `node` held the latest grant at `start` and committed a write in
/// the second before, in the incarnation `faults[i]` found running.
pub(crate) fn was_active(
    faults: &[(Duration, Fault)],
    i: usize,
    node: &str,
    start: Duration,
    grants: &[GrantRecord],
    writes: &[WriteRecord],
) -> bool {
    let leader = grants
        .iter()
        .rev()
        .find(|g| g.at <= start)
        .map(|g| g.node.as_str());
    let booted = faults[..i]
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Restart(n) if n == node))
        .map(|(t, _)| *t)
        .next_back()
        .unwrap_or(Duration::ZERO);
    let active = writes.iter().any(|w| {
        w.node == node && w.at >= booted && w.at <= start && w.at + Duration::from_secs(1) > start
    });
    leader == Some(node) && active
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_leader_that_believes_passes_and_anything_less_fails() {
        let beliefs = vec![(
            "a".to_owned(),
            Belief {
                at: s(21),
                epoch: Some(4),
                until: s(29),
                local: s(21),
            },
        )];
        assert_eq!(
            check(s(20), s(26), Some(("a".to_owned(), 4)), &beliefs),
            None
        );
        assert!(
            check(s(20), s(26), None, &beliefs).is_some(),
            "nobody leads"
        );
        assert!(
            check(s(20), s(26), Some(("a".to_owned(), 5)), &beliefs).is_some(),
            "a does not know"
        );
        assert!(
            check(s(20), s(30), Some(("a".to_owned(), 4)), &beliefs).is_some(),
            "a's belief ran out"
        );
    }

    fn grant(at: u64, node: &str, epoch: u64) -> GrantRecord {
        GrantRecord {
            at: Duration::from_millis(at),
            node: node.to_owned(),
            epoch,
            failover: false,
            promoted: false,
        }
    }

    fn wrote(at: u64, node: &str) -> WriteRecord {
        WriteRecord {
            at: Duration::from_millis(at),
            node: node.to_owned(),
            epoch: 1,
            current_epoch: 1,
            lease_valid: true,
        }
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn takeovers_are_judged_against_the_right_bound() {
        let history = |takeover: u64| {
            (
                vec![grant(0, "a", 1), grant(takeover, "b", 2)],
                vec![wrote(1_900, "a")],
            )
        };
        let crash = vec![
            (at(2_000), Fault::Crash("a".into())),
            (at(10_000), Fault::Restart("a".into())),
        ];
        let (g, w) = history(7_500);
        assert_eq!(
            check_takeovers(&crash, &[], &g, &w, at(6_000), at(20_000), None),
            None
        );
        let (g, w) = history(8_500);
        let v = check_takeovers(&crash, &[], &g, &w, at(6_000), at(20_000), None)
            .expect("late takeover");
        assert_eq!((v.invariant, v.at), ("LEASE-3", at(8_000)));

        let stop = vec![
            (at(2_000), Fault::Stop("a".into())),
            (at(5_000), Fault::Restart("a".into())),
        ];
        let (g, w) = history(2_400);
        assert_eq!(
            check_takeovers(&stop, &[], &g, &w, at(6_000), at(20_000), None),
            None
        );
        let (g, w) = history(3_500);
        assert!(
            check_takeovers(&stop, &[], &g, &w, at(6_000), at(20_000), None).is_some(),
            "a stop gets one second"
        );
    }

    #[test]
    fn overlapping_faults_and_idle_nodes_are_not_judged() {
        let (g, w) = (
            vec![grant(0, "a", 1), grant(4_500, "b", 2)],
            vec![wrote(1_900, "a")],
        );
        let partitioned_stop = vec![
            (at(1_500), Fault::Partition("a".into())),
            (at(2_000), Fault::Stop("a".into())),
            (at(5_000), Fault::Repair("a".into())),
            (at(6_000), Fault::Restart("a".into())),
        ];
        assert_eq!(
            check_takeovers(&partitioned_stop, &[], &g, &w, at(6_000), at(20_000), None),
            None
        );
        // A standby's crash needs no takeover.
        let crash_b = vec![
            (at(2_000), Fault::Crash("b".into())),
            (at(10_000), Fault::Restart("b".into())),
        ];
        assert_eq!(
            check_takeovers(
                &crash_b,
                &[],
                &[grant(0, "a", 1)],
                &w,
                at(6_000),
                at(20_000),
                None
            ),
            None
        );
        // Stopping a node restarted after a crash hands nothing over: its
        // writes before the crash were another incarnation's.
        let restarted_then_stopped = vec![
            (at(2_000), Fault::Crash("a".into())),
            (at(2_300), Fault::Restart("a".into())),
            (at(2_600), Fault::Stop("a".into())),
            (at(9_000), Fault::Restart("a".into())),
        ];
        assert_eq!(
            check_takeovers(
                &restarted_then_stopped,
                &[],
                &[grant(0, "a", 1), grant(6_500, "b", 2)],
                &w,
                at(6_000),
                at(20_000),
                None
            ),
            None
        );
        // Healing ends a silence early.
        let late = vec![
            (at(17_000), Fault::Crash("a".into())),
            (at(26_000), Fault::Restart("a".into())),
        ];
        let w = vec![wrote(16_900, "a")];
        assert_eq!(
            check_takeovers(
                &late,
                &[],
                &[grant(0, "a", 1)],
                &w,
                at(6_000),
                at(20_000),
                None
            ),
            None
        );
    }

    #[test]
    fn with_session_leases_a_crash_or_a_session_end_gets_the_tight_bound() {
        use rillflow_core::lease::LeaseConfig;
        let sessions = SessionTakeover::new(
            &LeaseConfig::from_secs(1, 3, 1),
            at(500),
            at(30),
            &["a".to_owned(), "b".to_owned()],
        );
        let w = vec![wrote(9_900, "a")];
        let crash = vec![
            (at(10_000), Fault::Crash("a".into())),
            (at(14_000), Fault::Restart("a".into())),
        ];
        let judge = |faults: &[(Duration, Fault)], grants: &[GrantRecord]| {
            check_takeovers(
                faults,
                &[],
                grants,
                &w,
                at(6_000),
                at(20_000),
                Some(&sessions),
            )
        };
        assert_eq!(
            judge(&crash, &[grant(0, "a", 1), grant(10_250, "b", 2)]),
            None
        );
        let v = judge(&crash, &[grant(0, "a", 1), grant(10_400, "b", 2)]).expect("late");
        assert_eq!((v.invariant, v.at), ("LEASE-3", at(10_300)));
        // The same node may take its lease back after its session was
        // ended, but someone must be granted it in time.
        let ended = vec![(at(10_000), Fault::EndSession("a".into()))];
        assert_eq!(
            judge(&ended, &[grant(0, "a", 1), grant(10_250, "a", 2)]),
            None
        );
        assert!(judge(&ended, &[grant(0, "a", 1)]).is_some());
    }

    #[test]
    fn a_session_end_is_not_judged_past_the_next_fault() {
        use rillflow_core::lease::LeaseConfig;
        let sessions = SessionTakeover::new(
            &LeaseConfig::from_secs(1, 3, 1),
            at(500),
            at(30),
            &["a".to_owned(), "b".to_owned()],
        );
        let w = vec![wrote(9_900, "a")];
        // The failover interval holds b back past the database's crash.
        let grants = [grant(8_000, "a", 1)];
        let grants: Vec<GrantRecord> = grants
            .into_iter()
            .map(|g| GrantRecord {
                failover: true,
                ..g
            })
            .collect();
        let faults = vec![
            (at(10_000), Fault::EndSession("a".into())),
            (at(12_000), Fault::CrashDb),
            (at(14_000), Fault::RestartDb),
        ];
        assert_eq!(
            check_takeovers(
                &faults,
                &[],
                &grants,
                &w,
                at(6_000),
                at(20_000),
                Some(&sessions)
            ),
            None
        );
        let alone = &faults[..1];
        assert!(check_takeovers(
            alone,
            &[],
            &grants,
            &w,
            at(6_000),
            at(20_000),
            Some(&sessions)
        )
        .is_some());
    }
}
