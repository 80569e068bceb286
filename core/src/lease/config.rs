//! Timing knobs of the hot/cold lease protocol.

use std::time::Duration;

/// How a node paces heartbeats and judges its own lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Interval between heartbeats (and lease renewals while hot).
    pub heartbeat: Duration,
    /// Lease length the database grants.
    pub lease_ttl: Duration,
    /// How long after expiry the database still refuses a new grant, so a
    /// leader whose renewal is slow has stopped before anyone else starts.
    pub lease_grace: Duration,
    /// Subtracted from every lease the node holds: it stops acting this much
    /// before the lease can have expired, covering clock-rate error and
    /// scheduling delay on its side.
    pub safety_margin: Duration,
    /// A request with no reply after this long counts as lost.
    pub request_timeout: Duration,
    /// Least time between two automatic failovers of a cluster (LEASE-4).
    pub min_failover_interval: Duration,
    /// After giving up the lease on request, a node leaves it to others for
    /// this long before it competes again.
    pub demote_holdoff: Duration,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseConfigError {
    /// Every duration must be positive.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The lease would expire before the next renewal.
    #[error("lease ttl ({ttl:?}) must be more than twice the heartbeat ({heartbeat:?})")]
    TtlTooShort {
        /// The lease ttl.
        ttl: Duration,
        /// The heartbeat.
        heartbeat: Duration,
    },
    /// The margin would eat the whole lease.
    #[error("safety margin ({margin:?}) must be less than half the lease ttl ({ttl:?})")]
    MarginTooLarge {
        /// The margin.
        margin: Duration,
        /// The lease ttl.
        ttl: Duration,
    },
}

impl LeaseConfig {
    /// The defaults of `projections run-loop`: heartbeat 5 s, ttl 30 s, grace 5 s.
    pub fn from_secs(heartbeat: u64, lease_ttl: u64, lease_grace: u64) -> Self {
        let heartbeat = Duration::from_secs(heartbeat);
        let lease_ttl = Duration::from_secs(lease_ttl);
        LeaseConfig {
            heartbeat,
            lease_ttl,
            lease_grace: Duration::from_secs(lease_grace),
            // A tenth of the lease, at least 100 ms: generous against clock
            // rate error (well under 1 %) and scheduling stalls.
            safety_margin: (lease_ttl / 10).max(Duration::from_millis(100)),
            request_timeout: heartbeat,
            min_failover_interval: lease_ttl,
            demote_holdoff: lease_ttl,
        }
    }

    /// How long one try of a fenced batch may take. Its transaction holds
    /// the cluster row `FOR SHARE`, so the holder's renewals wait for it. A
    /// batch is tried at most twice in a row (all at once, then event by
    /// event), so two tries that start up to a heartbeat after the last
    /// renewal still leave a heartbeat for the next renewal to land before
    /// the node's own deadline (ttl less the safety margin). Never below a
    /// heartbeat, the limit every statement had before batches got one.
    pub fn batch_budget(&self) -> Duration {
        let room = self
            .lease_ttl
            .saturating_sub(self.safety_margin + self.heartbeat * 2);
        (room / 2).max(self.heartbeat)
    }

    /// Checks that the knobs fit together.
    pub fn validate(&self) -> Result<(), LeaseConfigError> {
        for (name, d) in [
            ("heartbeat", self.heartbeat),
            ("lease ttl", self.lease_ttl),
            ("request timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(LeaseConfigError::Zero(name));
            }
        }
        if self.lease_ttl <= self.heartbeat * 2 {
            return Err(LeaseConfigError::TtlTooShort {
                ttl: self.lease_ttl,
                heartbeat: self.heartbeat,
            });
        }
        if self.safety_margin * 2 >= self.lease_ttl {
            return Err(LeaseConfigError::MarginTooLarge {
                margin: self.safety_margin,
                ttl: self.lease_ttl,
            });
        }
        Ok(())
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig::from_secs(5, 30, 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_leaves_room_for_a_renewal() {
        assert_eq!(
            LeaseConfig::default().batch_budget(),
            Duration::from_millis(8_500)
        );
        assert_eq!(
            LeaseConfig::from_secs(1, 10, 1).batch_budget(),
            Duration::from_millis(3_500)
        );
        // Tight timing: the budget never drops below a heartbeat.
        assert_eq!(
            LeaseConfig::from_secs(1, 3, 1).batch_budget(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn defaults_and_fast_settings_are_valid() {
        assert_eq!(LeaseConfig::default().validate(), Ok(()));
        assert_eq!(LeaseConfig::from_secs(1, 3, 1).validate(), Ok(()));
    }

    #[test]
    fn rejects_a_ttl_that_cannot_be_renewed_in_time() {
        assert!(matches!(
            LeaseConfig::from_secs(5, 10, 1).validate(),
            Err(LeaseConfigError::TtlTooShort { .. })
        ));
        let wide_margin = LeaseConfig {
            safety_margin: Duration::from_secs(15),
            ..LeaseConfig::default()
        };
        assert!(matches!(
            wide_margin.validate(),
            Err(LeaseConfigError::MarginTooLarge { .. })
        ));
        let no_heartbeat = LeaseConfig {
            heartbeat: Duration::ZERO,
            ..LeaseConfig::default()
        };
        assert_eq!(
            no_heartbeat.validate(),
            Err(LeaseConfigError::Zero("heartbeat"))
        );
    }
}
