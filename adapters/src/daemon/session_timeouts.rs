//! Session timeouts of a daemon's connections, derived from its lease timing
//! so that nothing a frozen or slow node holds can delay a takeover past
//! LEASE-3's bound of ttl + grace + heartbeat.

use std::time::Duration;

use rillflow_core::lease::LeaseConfig;

use crate::pool::PoolConfig;

/// The pool settings of a daemon running with `lease`.
///
/// - `idle_in_transaction_session_timeout` = grace + safety margin (at least
///   one second). A leader stops acting a margin before its lease can expire,
///   so a fenced transaction it froze in has been idle for at most that long
///   when the lease expires; the server ends it, and releases its lock on the
///   cluster row, by the time the grace period is over and standbys compete.
/// - `lock_timeout` = half a heartbeat: a lease statement stuck behind a lock
///   fails and reports "outcome unknown" well before the machine gives up on
///   it (its request timeout is one heartbeat), and is retried at the next
///   beat, after the lock holder was cut off.
/// - `statement_timeout` = one heartbeat: lease statements are single-row
///   updates; one that runs longer is reported as failed, not waited for.
/// - the pool's acquire timeout = two heartbeats. Besides bounding the wait
///   for a free connection, it paces reconnection: while the server is
///   down, the pool retries with a backoff that doubles up to a fifth of
///   that timeout, so after a restart every node is back within 0.4 s at a
///   one-second heartbeat instead of the 2 s the 10 s default allows. A
///   restart ends every lease session, so how soon the nodes are back is
///   how soon one of them holds the lease again.
///
/// Projection batches run inside fenced transactions under a limit of their
/// own, [`LeaseConfig::batch_budget`], set per transaction by the runner
/// (`ProjectionRunner::with_budget`): long enough for slow handlers, short
/// enough that the holder's renewal, which waits for the batch, still lands.
pub fn daemon_pool_config(lease: &LeaseConfig) -> PoolConfig {
    let idle = (lease.lease_grace + lease.safety_margin).max(Duration::from_secs(1));
    PoolConfig {
        acquire_timeout: lease.heartbeat * 2,
        statement_timeout: lease.heartbeat,
        lock_timeout: lease.heartbeat / 2,
        idle_in_transaction_timeout: idle,
        application_name: "rillflow-daemon".to_owned(),
        ..PoolConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_timing_gives_tight_timeouts() {
        let c = daemon_pool_config(&LeaseConfig::from_secs(1, 3, 1));
        assert_eq!(c.statement_timeout, Duration::from_secs(1));
        assert_eq!(c.lock_timeout, Duration::from_millis(500));
        assert_eq!(c.idle_in_transaction_timeout, Duration::from_millis(1300));
        assert_eq!(c.acquire_timeout, Duration::from_secs(2));
    }

    #[test]
    fn the_idle_limit_never_drops_below_a_second() {
        let c = daemon_pool_config(&LeaseConfig::from_secs(1, 3, 0));
        assert_eq!(c.idle_in_transaction_timeout, Duration::from_secs(1));
    }

    #[test]
    fn defaults_stay_within_the_takeover_bound() {
        let lease = LeaseConfig::default();
        let c = daemon_pool_config(&lease);
        assert!(c.idle_in_transaction_timeout <= lease.lease_grace + lease.safety_margin);
        assert!(c.lock_timeout < lease.request_timeout);
    }
}
