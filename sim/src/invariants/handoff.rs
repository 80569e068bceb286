//! LEASE-3 for a handoff: once the operator's promotion of a live standby
//! is recorded, with no fault in the way, that node is granted the lease
//! within the handoff bound.
//!
//! The bound, message by message: the hot node sees the request at its
//! next heartbeat (a beat on a slow clock, then connect, request, reply),
//! stops its work (a write in flight: three messages), releases (connect,
//! request) and the database notifies the standbys (one); the target
//! heartbeats (three) and is granted the lease (three on its open lease
//! session, nine when it must open a new one). A target whose own request
//! was in flight when the notice came does not look again until its next
//! beat: one more heartbeat. With no hot node, the target asks at its next
//! heartbeat, well within that. A target that had just released a lease
//! itself is not held off (`demote_holdoff`) from a promotion naming it.

use std::time::Duration;

use rillflow_core::lease::LeaseConfig;

use super::Violation;
use crate::harness::faults::InForce;
use crate::hosts::cluster_operator::{Attempt, Verdict};
use crate::model::lease::records::{GrantRecord, WriteRecord};
use crate::scenarios::operator::plan::Step;

/// Messages from the promotion to the grant: see the module comment.
const MESSAGES: u32 = 3 + 3 + 2 + 1 + 3 + 9;

/// Whether the node holding the latest grant at `at`, not the one to be
/// promoted, has neither released it nor committed a write in the second
/// before: its work may be stuck in a write whose reply was lost, and it
/// hands over only once that returns or its lease runs out on its own
/// clock (as `liveness::was_active` leaves such a node unjudged).
fn stuck(
    at: Duration,
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    releases: &[(String, Duration)],
) -> bool {
    let Some(holder) = grants.iter().rev().find(|g| g.at <= at) else {
        return false;
    };
    let released = releases
        .iter()
        .any(|(n, t)| *n == holder.node && *t >= holder.at && *t <= at);
    let wrote = writes.iter().any(|w| {
        w.node == holder.node
            && w.epoch == holder.epoch
            && w.at <= at
            && w.at + Duration::from_secs(1) > at
    });
    !released && !wrote
}

/// The bound after the promotion was recorded.
pub fn bound(config: &LeaseConfig, one_way: Duration) -> Duration {
    let beat = config.heartbeat + config.heartbeat / 500;
    beat * 2 + one_way * MESSAGES
}

/// A promotion judged: when it was recorded and how long the grant took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    /// When the operator was told it was recorded.
    pub at: Duration,
    /// From then to the grant.
    pub took: Duration,
}

/// Every promotion the bound applies to, with how long it took; or the
/// first that took too long. `settle`: how long before it the cluster
/// must have run without faults; `end`: the run's end (a promotion whose
/// deadline lies beyond is not judged).
#[allow(clippy::too_many_arguments)]
pub fn check(
    attempts: &[Attempt],
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    releases: &[(String, Duration)],
    faults: &[InForce],
    config: &LeaseConfig,
    one_way: Duration,
    settle: Duration,
    end: Duration,
) -> Result<Vec<Handoff>, Violation> {
    let bound = bound(config, one_way);
    let mut judged = Vec::new();
    for a in attempts {
        let (Step::Promote { .. } | Step::PromoteStandby, Verdict::Accepted { node }) =
            (&a.step, &a.verdict)
        else {
            continue;
        };
        let deadline = a.answered + bound;
        let from = a.sent.saturating_sub(settle);
        // A fault undone at `from` (the heal, say) is no longer in the way.
        let faulted = faults.iter().any(|f| f.from <= deadline && f.until > from);
        let disturbed = attempts.iter().any(|b| {
            b.sent > a.sent && b.sent <= deadline && matches!(b.verdict, Verdict::Accepted { .. })
        });
        if faulted
            || disturbed
            || deadline > end
            || a.sent < settle
            || stuck(a.sent, grants, writes, releases)
        {
            continue;
        }
        match grants
            .iter()
            .find(|g| g.node == *node && g.at > a.sent && g.at <= deadline)
        {
            Some(g) => judged.push(Handoff {
                at: a.answered,
                took: g.at.saturating_sub(a.answered),
            }),
            None => {
                return Err(Violation {
                    invariant: "LEASE-3",
                    at: deadline,
                    detail: format!(
                        "the promotion of {node} was recorded at {:.3}s with no fault in the way \
                         and it was not granted the lease within {:.3}s",
                        a.answered.as_secs_f64(),
                        (deadline - a.answered).as_secs_f64()
                    ),
                })
            }
        }
    }
    Ok(judged)
}
