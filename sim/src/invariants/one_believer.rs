//! LEASE-1 and LEASE-2 on the nodes: at no instant do two nodes believe they
//! may write, whatever their clocks' rates; a belief is only ever in an epoch
//! the database granted to that node.
//!
//! Two facts of lease sessions (sql/0017) shape the check:
//!
//! - A node's belief ends when its process dies (a crash, or a restart of
//!   its host). Before sessions this never mattered: nobody was granted the
//!   lease before the dead node's belief had run out. Now its session ends
//!   with it and a standby takes over at once.
//! - A node whose lease session the database ends while it runs (a
//!   database restart, `pg_terminate_backend`) has lost its lease at that
//!   moment, and a standby may be granted it at once; the node learns at
//!   its next beat, from its heartbeat's view or its renewal (`Lost`), and
//!   may believe until then. Its writes are safe meanwhile: the fence
//!   refuses its epoch once the lease moved (`single_writer` checks it). So
//!   an overlap is excused exactly when the node with the older epoch was
//!   granted it before its session was ended by such a fault, and the
//!   overlap lies between that end and [`learning_bound`] after the moment
//!   the node could first learn it (the fault; after a database restart,
//!   the database's return). The schedule keeps other faults away for that
//!   long, so nothing else can keep the node from learning.

use std::time::Duration;

use rillflow_core::lease::LeaseConfig;

use crate::harness::faults::Fault;
use crate::harness::trace::Belief;
use crate::model::lease::records::GrantRecord;

use super::Violation;

/// How long after its session ended (or the database came back) a running
/// node has to stop believing: its next beat, at most a heartbeat away on
/// its own clock, and the answer to it, which the request timeout bounds
/// (a heartbeat's view takes one round trip, a renewal four: the ended
/// session found, a new one connected and opened, the renewal `Lost`). The
/// timeout's slack also covers the clock's rate error (2 ms a second).
pub fn learning_bound(config: &LeaseConfig) -> Duration {
    config.heartbeat + config.request_timeout
}

/// A fault that ended running nodes' lease sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionsEnded {
    /// Whose: one node's, or (None) everyone's.
    node: Option<String>,
    /// When they ended.
    at: Duration,
    /// When every such node must have stopped believing.
    learned_by: Duration,
}

/// What the faults did to beliefs: deaths end them, session ends excuse
/// them for a while (see the module's doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    deaths: Vec<(String, Duration)>,
    ended: Vec<SessionsEnded>,
}

impl Lifecycle {
    /// From a run's fault schedule; `sessions` says whether leases were
    /// bound to sessions (without, nothing is excused).
    pub fn of(faults: &[(Duration, Fault)], sessions: bool, learn: Duration) -> Lifecycle {
        let mut out = Lifecycle::default();
        for (i, (at, f)) in faults.iter().enumerate() {
            match f {
                Fault::Crash(n) | Fault::Restart(n) => out.deaths.push((n.clone(), *at)),
                Fault::EndSession(n) if sessions => out.ended.push(SessionsEnded {
                    node: Some(n.clone()),
                    at: *at,
                    learned_by: *at + learn,
                }),
                Fault::CrashDb if sessions => {
                    let back = faults[i + 1..]
                        .iter()
                        .find(|(_, g)| *g == Fault::RestartDb)
                        .map_or(Duration::MAX, |(t, _)| *t);
                    out.ended.push(SessionsEnded {
                        node: None,
                        at: *at,
                        learned_by: back.saturating_add(learn),
                    });
                }
                _ => {}
            }
        }
        out
    }

    fn death_of(&self, node: &str, after: Duration) -> Option<Duration> {
        self.deaths
            .iter()
            .filter(|(n, at)| n == node && *at >= after)
            .map(|(_, at)| *at)
            .min()
    }

    /// Whether `old` (granted at `granted`) may still believe during
    /// [`from`, `to`): its session ended by then and it had until
    /// `learned_by` to find out.
    fn excuses(&self, old: &Stretch, granted: Duration, from: Duration, to: Duration) -> bool {
        self.ended.iter().any(|e| {
            e.node.as_deref().is_none_or(|n| n == old.node)
                && granted < e.at
                && e.at <= from
                && to <= e.learned_by
        })
    }
}

/// One node's stretch of believing in an epoch, in simulated time.
#[derive(Debug, Clone)]
struct Stretch {
    node: String,
    epoch: u64,
    from: Duration,
    to: Duration,
}

/// Turns each node's belief changes into stretches: a belief lasts until it
/// runs out, the node publishes another, or the node dies, whichever is
/// first.
fn stretches(beliefs: &[(String, Belief)], end: Duration, life: &Lifecycle) -> Vec<Stretch> {
    let mut out = Vec::new();
    for (i, (node, b)) in beliefs.iter().enumerate() {
        let Some(epoch) = b.epoch else { continue };
        let next = beliefs[i + 1..]
            .iter()
            .find(|(n, _)| n == node)
            .map_or(end, |(_, nb)| nb.at);
        let died = life.death_of(node, b.at).unwrap_or(end);
        let to = b.until.min(next).min(died);
        if to > b.at {
            out.push(Stretch {
                node: node.clone(),
                epoch,
                from: b.at,
                to,
            });
        }
    }
    out
}

/// The first overlap of two nodes' beliefs that `life` does not excuse, or
/// a belief in an epoch the node was never granted.
pub fn check(
    beliefs: &[(String, Belief)],
    grants: &[GrantRecord],
    end: Duration,
    life: &Lifecycle,
) -> Option<Violation> {
    let all = stretches(beliefs, end, life);
    let granted = |s: &Stretch| {
        grants
            .iter()
            .find(|g| g.epoch == s.epoch && g.node == s.node)
            .map(|g| g.at)
    };
    for s in &all {
        if granted(s).is_none() {
            return Some(Violation {
                invariant: "LEASE-1",
                at: s.from,
                detail: format!(
                    "{} believes in epoch {}, which was never granted to it",
                    s.node, s.epoch
                ),
            });
        }
    }
    let mut first: Option<Violation> = None;
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if a.node != b.node && a.from < b.to && b.from < a.to {
                let at = a.from.max(b.from);
                let until = a.to.min(b.to);
                let (old, new) = if a.epoch < b.epoch { (a, b) } else { (b, a) };
                let excused = old.epoch < new.epoch
                    && granted(old).is_some_and(|g| life.excuses(old, g, at, until));
                if !excused && first.as_ref().is_none_or(|f| at < f.at) {
                    first = Some(Violation {
                        invariant: "LEASE-2",
                        at,
                        detail: format!(
                            "{} (epoch {}, {:.3}–{:.3}s) and {} (epoch {}, {:.3}–{:.3}s) both believe they may write",
                            a.node,
                            a.epoch,
                            a.from.as_secs_f64(),
                            a.to.as_secs_f64(),
                            b.node,
                            b.epoch,
                            b.from.as_secs_f64(),
                            b.to.as_secs_f64()
                        ),
                    });
                }
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn believes(node: &str, at: u64, epoch: Option<u64>, until: u64) -> (String, Belief) {
        (
            node.to_owned(),
            Belief {
                at: s(at),
                epoch,
                until: s(until),
                local: s(at),
            },
        )
    }

    fn granted_at(node: &str, epoch: u64, at: u64) -> GrantRecord {
        GrantRecord {
            at: s(at),
            node: node.to_owned(),
            epoch,
            failover: false,
            promoted: false,
        }
    }

    fn granted(node: &str, epoch: u64) -> GrantRecord {
        granted_at(node, epoch, 0)
    }

    fn none() -> Lifecycle {
        Lifecycle::default()
    }

    #[test]
    fn consecutive_beliefs_pass() {
        let beliefs = [
            believes("a", 0, Some(1), 2_700),
            believes("a", 2_700, None, 2_700),
            believes("b", 4_000, Some(2), 6_700),
        ];
        let grants = [granted("a", 1), granted("b", 2)];
        assert_eq!(check(&beliefs, &grants, s(10_000), &none()), None);
    }

    #[test]
    fn overlapping_beliefs_are_caught_at_the_first_shared_instant() {
        let beliefs = [
            believes("a", 0, Some(1), 3_000),
            believes("b", 2_500, Some(2), 5_000),
        ];
        let grants = [granted("a", 1), granted("b", 2)];
        let v = check(&beliefs, &grants, s(10_000), &none()).expect("overlap");
        assert_eq!((v.invariant, v.at), ("LEASE-2", s(2_500)));
    }

    #[test]
    fn a_belief_ends_when_the_node_publishes_another() {
        // a's first belief would run to 3 s, but a withdrew it at 1 s.
        let beliefs = [
            believes("a", 0, Some(1), 3_000),
            believes("a", 1_000, None, 1_000),
            believes("b", 2_000, Some(2), 5_000),
        ];
        let grants = [granted("a", 1), granted("b", 2)];
        assert_eq!(check(&beliefs, &grants, s(10_000), &none()), None);
    }

    #[test]
    fn a_belief_in_an_epoch_granted_to_another_node_is_caught() {
        let beliefs = [believes("a", 0, Some(2), 1_000)];
        let v = check(&beliefs, &[granted("b", 2)], s(10_000), &none()).expect("not a's epoch");
        assert_eq!(v.invariant, "LEASE-1");
    }

    const LEARN: Duration = Duration::from_secs(2);

    #[test]
    fn a_belief_ends_when_the_process_dies() {
        // a's session ends with its process at 1 s; b takes over at 1.1 s.
        let beliefs = [
            believes("a", 0, Some(1), 2_700),
            believes("b", 1_100, Some(2), 3_800),
        ];
        let grants = [granted("a", 1), granted_at("b", 2, 1_100)];
        let crash = [(s(1_000), Fault::Crash("a".into()))];
        let life = Lifecycle::of(&crash, true, LEARN);
        assert_eq!(check(&beliefs, &grants, s(10_000), &life), None);
        // Without the crash the same beliefs overlap.
        assert!(check(&beliefs, &grants, s(10_000), &none()).is_some());
    }

    #[test]
    fn a_node_whose_session_was_ended_may_believe_until_it_learns() {
        let grants = [granted("a", 1), granted_at("b", 2, 1_100)];
        let ended = [(s(1_000), Fault::EndSession("a".into()))];
        let life = Lifecycle::of(&ended, true, LEARN);
        // a learns at 1.9 s, b believes from 1.1 s: excused.
        let learned = [
            believes("a", 0, Some(1), 2_700),
            believes("b", 1_100, Some(2), 3_800),
            believes("a", 1_900, None, 1_900),
        ];
        assert_eq!(check(&learned, &grants, s(10_000), &life), None);
        // Not learned by 3 s (the end plus LEARN): caught.
        let slow = [
            believes("a", 0, Some(1), 3_500),
            believes("b", 1_100, Some(2), 3_800),
        ];
        let v = check(&slow, &grants, s(10_000), &life).expect("a never learned");
        assert_eq!(v.at, s(1_100));
        // Only the node whose session ended, and not without sessions.
        let other = [(s(1_000), Fault::EndSession("b".into()))];
        let life_b = Lifecycle::of(&other, true, LEARN);
        assert!(check(&learned, &grants, s(10_000), &life_b).is_some());
        let off = Lifecycle::of(&ended, false, LEARN);
        assert!(check(&learned, &grants, s(10_000), &off).is_some());
    }

    #[test]
    fn an_overlap_before_the_session_ended_is_never_excused() {
        let grants = [granted("a", 1), granted_at("b", 2, 500)];
        let ended = [(s(1_000), Fault::EndSession("a".into()))];
        let life = Lifecycle::of(&ended, true, LEARN);
        let beliefs = [
            believes("a", 0, Some(1), 1_500),
            believes("b", 500, Some(2), 3_000),
        ];
        assert!(check(&beliefs, &grants, s(10_000), &life).is_some());
    }

    #[test]
    fn a_database_restart_excuses_everyone_until_its_return_plus_learning() {
        let faults = [(s(1_000), Fault::CrashDb), (s(1_300), Fault::RestartDb)];
        let life = Lifecycle::of(&faults, true, LEARN);
        let grants = [granted("a", 1), granted_at("b", 2, 1_400)];
        let beliefs = [
            believes("a", 0, Some(1), 3_200),
            believes("b", 1_400, Some(2), 4_100),
            believes("a", 2_200, None, 2_200),
        ];
        assert_eq!(check(&beliefs, &grants, s(10_000), &life), None);
        let late = [
            believes("a", 0, Some(1), 3_400),
            believes("b", 1_400, Some(2), 4_100),
        ];
        assert!(check(&late, &grants, s(10_000), &life).is_some());
    }
}
