//! What happens when a projection handler fails (PROJ-5).

use std::time::Duration;

/// What to do once a failing event has used up its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Record it in the dead-letter table and go on with the next event.
    DeadLetter,
    /// Pause the projection with the error until an operator resumes it.
    Stop,
}

/// The decision after a handler failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureDecision {
    /// Commit what came before the event and try it again after `delay`.
    Retry {
        /// How long to wait before the next attempt.
        delay: Duration,
    },
    /// Retries are used up: dead-letter the event and go on.
    DeadLetter,
    /// Retries are used up: stop the projection.
    Stop,
}

/// Retries with exponential backoff, then dead-letter or stop.
///
/// `max_retries` counts attempts after the first: with 3 an event is tried
/// four times. The delay doubles from `base_backoff` up to `max_backoff`, so
/// a poison event cannot keep a partition busy, while a passing fault (a
/// deadlock, a restarted database) clears on an early retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub base_backoff: Duration,
    /// Longest delay between attempts.
    pub max_backoff: Duration,
    /// What to do when retries are used up.
    pub exhausted: Exhausted,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            exhausted: Exhausted::DeadLetter,
        }
    }
}

impl RetryPolicy {
    /// The decision after the event failed for the `failures`-th time
    /// (1 after the first failure).
    pub fn decide(&self, failures: u32) -> FailureDecision {
        if failures <= self.max_retries {
            return FailureDecision::Retry {
                delay: self.backoff(failures),
            };
        }
        match self.exhausted {
            Exhausted::DeadLetter => FailureDecision::DeadLetter,
            Exhausted::Stop => FailureDecision::Stop,
        }
    }

    /// The delay before retry number `retry` (1-based): base × 2^(retry−1),
    /// capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base_backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_retries: u32, exhausted: Exhausted) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            exhausted,
        }
    }

    #[test]
    fn retries_with_doubling_delays_then_dead_letters() {
        let p = policy(3, Exhausted::DeadLetter);
        let decisions: Vec<_> = (1..=5).map(|n| p.decide(n)).collect();
        let retry = |ms| FailureDecision::Retry {
            delay: Duration::from_millis(ms),
        };
        assert_eq!(
            decisions,
            vec![
                retry(100),
                retry(200),
                retry(400),
                FailureDecision::DeadLetter,
                FailureDecision::DeadLetter
            ]
        );
    }

    #[test]
    fn stop_policy_stops_and_zero_retries_gives_up_at_once() {
        assert_eq!(policy(0, Exhausted::Stop).decide(1), FailureDecision::Stop);
        assert_eq!(
            policy(0, Exhausted::DeadLetter).decide(1),
            FailureDecision::DeadLetter
        );
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let p = policy(100, Exhausted::DeadLetter);
        assert_eq!(p.backoff(5), Duration::from_secs(1));
        assert_eq!(p.backoff(64), Duration::from_secs(1));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(1));
    }
}
