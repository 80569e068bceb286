//! LEASE-4, no flapping: an automatic failover follows the last failover
//! by at least the failover interval. As production defines it, a failover
//! is a grant that takes the lease from another node that had not released
//! it: the grant stamps `last_failover_at` (`TRY_ACQUIRE`). Automatic means
//! no operator asked for it: a grant that fulfils a promotion of its
//! grantee is exempt (the promoted node asks at once, `should_try_acquire`),
//! though it too stamps the time the next automatic one waits from.
//! Releases (graceful stops, handoffs, demotions) are no failovers.

use std::time::Duration;

use super::Violation;
use crate::model::lease::records::GrantRecord;

/// The first automatic failover that came less than `interval` after the
/// failover before it.
pub fn check(grants: &[GrantRecord], interval: Duration) -> Option<Violation> {
    let mut last: Option<&GrantRecord> = None;
    for g in grants.iter().filter(|g| g.failover) {
        if let Some(prev) = last {
            let gap = g.at.saturating_sub(prev.at);
            if !g.promoted && gap < interval {
                return Some(Violation {
                    invariant: "LEASE-4",
                    at: g.at,
                    detail: format!(
                        "{} took epoch {} over automatically {:.3}s after the failover to {} \
                         (epoch {}); the interval is {:?}",
                        g.node,
                        g.epoch,
                        gap.as_secs_f64(),
                        prev.node,
                        prev.epoch,
                        interval
                    ),
                });
            }
        }
        last = Some(g);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(at: u64, node: &str, failover: bool, promoted: bool) -> GrantRecord {
        GrantRecord {
            at: Duration::from_millis(at),
            node: node.to_owned(),
            epoch: at,
            failover,
            promoted,
        }
    }

    #[test]
    fn only_automatic_failovers_wait_for_the_interval() {
        let interval = Duration::from_secs(3);
        let close = [
            grant(1_000, "a", true, false),
            grant(2_000, "b", true, false),
        ];
        assert_eq!(
            check(&close, interval).map(|v| v.at),
            Some(Duration::from_secs(2))
        );
        let promoted = [
            grant(1_000, "a", true, false),
            grant(2_000, "b", true, true),
        ];
        assert_eq!(check(&promoted, interval), None);
        // A promoted takeover restarts the interval for the next one.
        let after_promoted = [
            grant(1_000, "a", true, false),
            grant(3_500, "b", true, true),
            grant(5_000, "a", true, false),
        ];
        assert!(check(&after_promoted, interval).is_some());
        let handoffs = [
            grant(1_000, "a", true, false),
            grant(1_500, "b", false, false),
            grant(4_100, "a", true, false),
        ];
        assert_eq!(check(&handoffs, interval), None);
    }
}
