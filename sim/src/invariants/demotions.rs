//! LEASE-4 for a node that gave its lease up: a demoted node stops writing
//! and stands by.
//!
//! - It stops: after the database recorded the demotion of the holder of
//!   epoch `e`, the holder sees it at its next heartbeat and stops its work;
//!   with no fault on it, no write of its under `e` commits later than a
//!   heartbeat and the messages of that heartbeat and a write in flight.
//! - It stands by: a node that released a lease (a demotion, a handoff to
//!   a promoted node, work that stopped on its own) is not granted the
//!   lease again for `demote_holdoff`, measured on its own clock from its
//!   release, unless it was restarted meanwhile or the grant fulfils the
//!   operator's promotion of it.

use std::time::Duration;

use rillflow_core::lease::LeaseConfig;

use super::Violation;
use crate::harness::faults::{Fault, InForce};
use crate::model::lease::records::{GrantRecord, OperatorRecord, OperatorRequest, WriteRecord};

/// A heartbeat (on a clock up to 2000 ppm slow) and its three messages,
/// then a write already in flight: its request and a step.
pub fn stop_bound(config: &LeaseConfig, one_way: Duration) -> Duration {
    config.heartbeat + config.heartbeat / 500 + one_way * 6
}

/// The first write of a demoted holder under its epoch later than
/// [`stop_bound`] after the demotion, while no fault touched it.
pub fn check_stops(
    requests: &[OperatorRecord],
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    faults: &[InForce],
    config: &LeaseConfig,
    one_way: Duration,
) -> Option<Violation> {
    let bound = stop_bound(config, one_way);
    // Long enough for the holder's heartbeats to run regularly.
    let settle = config.heartbeat * 2 + config.request_timeout;
    for r in requests.iter().filter(|r| r.written) {
        let OperatorRequest::Demote {
            demoted: Some(node),
            ..
        } = &r.request
        else {
            continue;
        };
        let Some(holder) = grants.iter().rev().find(|g| g.at <= r.at) else {
            continue;
        };
        let (from, until) = (r.at.saturating_sub(settle), r.at + bound);
        let touched = faults
            .iter()
            .any(|f| (f.host == *node || f.host == "db") && f.from <= until && f.until >= from);
        if holder.node != *node || touched {
            continue;
        }
        if let Some(w) = writes
            .iter()
            .find(|w| w.node == *node && w.epoch == holder.epoch && w.at > until)
        {
            return Some(Violation {
                invariant: "LEASE-4",
                at: w.at,
                detail: format!(
                    "{node} was demoted at {:.3}s while holding epoch {} and still committed a \
                     write under it at {:.3}s (bound {:?})",
                    r.at.as_secs_f64(),
                    holder.epoch,
                    w.at.as_secs_f64(),
                    bound
                ),
            });
        }
    }
    None
}

/// The first grant to a node within `holdoff` of its release, in the same
/// incarnation, that no promotion of it asked for.
pub fn check_stands_by(
    releases: &[(String, Duration)],
    grants: &[GrantRecord],
    faults: &[(Duration, Fault)],
    holdoff: Duration,
) -> Option<Violation> {
    // The node's clock may run 2000 ppm fast.
    let least = holdoff - holdoff / 500 - Duration::from_millis(1);
    for (node, released) in releases {
        let Some(next) = grants.iter().find(|g| g.node == *node && g.at > *released) else {
            continue;
        };
        let restarted = faults.iter().any(|(t, f)| {
            matches!(f, Fault::Restart(n) if n == node) && *t > *released && *t <= next.at
        });
        if !restarted && !next.promoted && next.at < *released + least {
            return Some(Violation {
                invariant: "LEASE-4",
                at: next.at,
                detail: format!(
                    "{node} released a lease at {:.3}s and was granted epoch {} {:.3}s later, \
                     within its hold-off of {holdoff:?}",
                    released.as_secs_f64(),
                    next.epoch,
                    (next.at - *released).as_secs_f64()
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn grant(at: u64, node: &str, epoch: u64) -> GrantRecord {
        GrantRecord {
            at: ms(at),
            node: node.to_owned(),
            epoch,
            failover: false,
            promoted: false,
        }
    }

    #[test]
    fn a_released_node_waits_out_its_holdoff_unless_restarted() {
        let releases = [("a".to_owned(), ms(5_000))];
        let early = [grant(1_000, "a", 1), grant(6_000, "a", 2)];
        assert!(check_stands_by(&releases, &early, &[], ms(3_000)).is_some());
        let restarted = [(ms(5_500), Fault::Restart("a".to_owned()))];
        assert_eq!(
            check_stands_by(&releases, &early, &restarted, ms(3_000)),
            None
        );
        let late = [grant(1_000, "a", 1), grant(8_100, "a", 2)];
        assert_eq!(check_stands_by(&releases, &late, &[], ms(3_000)), None);
        let promoted = [
            grant(1_000, "a", 1),
            GrantRecord {
                promoted: true,
                ..grant(6_000, "a", 2)
            },
        ];
        assert_eq!(check_stands_by(&releases, &promoted, &[], ms(3_000)), None);
    }

    #[test]
    fn a_demoted_holder_stops_writing_in_time() {
        let config = LeaseConfig::from_secs(1, 3, 1);
        let demoted = [OperatorRecord {
            at: ms(10_000),
            request: OperatorRequest::Demote {
                node: None,
                demoted: Some("a".to_owned()),
            },
            written: true,
        }];
        let grants = [grant(1_000, "a", 1)];
        let write = |at| WriteRecord {
            at: ms(at),
            node: "a".to_owned(),
            epoch: 1,
            current_epoch: 1,
            lease_valid: true,
        };
        let judge = |writes: &[WriteRecord], faults: &[InForce]| {
            check_stops(&demoted, &grants, writes, faults, &config, ms(30))
        };
        assert_eq!(judge(&[write(10_900)], &[]), None);
        assert!(judge(&[write(11_500)], &[]).is_some());
        let partitioned = [InForce {
            host: "a".to_owned(),
            from: ms(10_100),
            until: ms(12_000),
            silences: true,
        }];
        assert_eq!(judge(&[write(11_500)], &partitioned), None);
    }
}
