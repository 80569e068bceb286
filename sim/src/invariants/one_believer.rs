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
