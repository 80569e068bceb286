//! LEASE-1 and LEASE-2 on the nodes: at no instant do two nodes believe they
//! may write, whatever their clocks' rates; a belief is only ever in an epoch
//! the database granted to that node.

use std::time::Duration;

use crate::model_db::GrantRecord;
use crate::trace::Belief;

use super::Violation;

/// One node's stretch of believing in an epoch, in simulated time.
#[derive(Debug, Clone)]
struct Stretch {
    node: String,
    epoch: u64,
    from: Duration,
    to: Duration,
}

/// Turns each node's belief changes into stretches: a belief lasts until it
/// runs out or the node publishes another, whichever is first.
fn stretches(beliefs: &[(String, Belief)], end: Duration) -> Vec<Stretch> {
    let mut out = Vec::new();
    for (i, (node, b)) in beliefs.iter().enumerate() {
        let Some(epoch) = b.epoch else { continue };
        let next = beliefs[i + 1..]
            .iter()
            .find(|(n, _)| n == node)
            .map_or(end, |(_, nb)| nb.at);
        let to = b.until.min(next);
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

/// The first overlap of two nodes' beliefs, or a belief in an epoch the
/// node was never granted.
pub fn check(
    beliefs: &[(String, Belief)],
    grants: &[GrantRecord],
    end: Duration,
) -> Option<Violation> {
    let all = stretches(beliefs, end);
    for s in &all {
        if !grants
            .iter()
            .any(|g| g.epoch == s.epoch && g.node == s.node)
        {
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
                if first.as_ref().is_none_or(|f| at < f.at) {
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

    fn granted(node: &str, epoch: u64) -> GrantRecord {
        GrantRecord {
            at: Duration::ZERO,
            node: node.to_owned(),
            epoch,
        }
    }

    #[test]
    fn consecutive_beliefs_pass() {
        let beliefs = [
            believes("a", 0, Some(1), 2_700),
            believes("a", 2_700, None, 2_700),
            believes("b", 4_000, Some(2), 6_700),
        ];
        assert_eq!(
            check(&beliefs, &[granted("a", 1), granted("b", 2)], s(10_000)),
            None
        );
    }

    #[test]
    fn overlapping_beliefs_are_caught_at_the_first_shared_instant() {
        let beliefs = [
            believes("a", 0, Some(1), 3_000),
            believes("b", 2_500, Some(2), 5_000),
        ];
        let v = check(&beliefs, &[granted("a", 1), granted("b", 2)], s(10_000)).expect("overlap");
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
        assert_eq!(
            check(&beliefs, &[granted("a", 1), granted("b", 2)], s(10_000)),
            None
        );
    }

    #[test]
    fn a_belief_in_an_epoch_granted_to_another_node_is_caught() {
        let beliefs = [believes("a", 0, Some(2), 1_000)];
        let v = check(&beliefs, &[granted("b", 2)], s(10_000)).expect("not a's epoch");
        assert_eq!(v.invariant, "LEASE-1");
    }
}
