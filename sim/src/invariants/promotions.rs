//! LEASE-4 at the operator's door: a promotion is recorded only when core's
//! `check_promote` allows it, judged on the database's view. Checked
//! against what the run knows the database cannot: which faults were
//! silencing the target. A node the database has not heard from for longer
//! than the ttl must be refused, even with `--force`; one silent for more
//! than two heartbeats must be refused without `--force`; and a node no
//! fault touched for a while (its heartbeats arrive every beat) must not be
//! refused as stopped, unknown, unhealthy or lagging.

use std::time::Duration;

use rillflow_core::lease::failover::PromoteRefusal;
use rillflow_core::lease::LeaseConfig;

use super::Violation;
use crate::harness::faults::InForce;
use crate::hosts::cluster_operator::{Attempt, Verdict};
use crate::scenarios::operator::plan::Step;

/// What a heartbeat already on its way when a fault began may add: its
/// flight and a step of the simulation, with room to spare.
pub const IN_FLIGHT: Duration = Duration::from_millis(100);

/// How long a node no fault touched has been heartbeating regularly: a
/// link back (or a restart) is followed by a heartbeat within about a
/// heartbeat and a request timeout.
fn settled(config: &LeaseConfig) -> Duration {
    config.heartbeat * 2 + config.request_timeout
}

/// The first promotion whose answer the faults contradict.
pub fn check(attempts: &[Attempt], faults: &[InForce], config: &LeaseConfig) -> Option<Violation> {
    let ttl = config.lease_ttl;
    let lag_limit = config.heartbeat * 2;
    for a in attempts {
        let Step::Promote { node, force } = &a.step else {
            continue;
        };
        // Silent for the whole exchange, since `from`.
        let silent_since = faults
            .iter()
            .filter(|f| f.host == *node && f.silences && f.from <= a.sent && f.until >= a.answered)
            .map(|f| f.from)
            .min();
        let fail = |detail: String| {
            Some(Violation {
                invariant: "LEASE-4",
                at: a.answered,
                detail,
            })
        };
        match &a.verdict {
            Verdict::Accepted { .. } => {
                let Some(since) = silent_since else { continue };
                let silent = a.sent - since;
                if silent > ttl + IN_FLIGHT {
                    return fail(format!(
                        "promotion of {node} (force {force}) accepted at {:.3}s although the \
                         database had not heard from it for {:.3}s (ttl {:?})",
                        a.sent.as_secs_f64(),
                        silent.as_secs_f64(),
                        ttl
                    ));
                }
                if !force && silent > lag_limit + IN_FLIGHT {
                    return fail(format!(
                        "promotion of lagging {node} accepted without --force at {:.3}s: silent \
                         for {:.3}s",
                        a.sent.as_secs_f64(),
                        silent.as_secs_f64()
                    ));
                }
            }
            Verdict::Refused(
                refusal @ (PromoteRefusal::UnknownNode { .. }
                | PromoteRefusal::Stopped { .. }
                | PromoteRefusal::Unhealthy { .. }
                | PromoteRefusal::Lagging { .. }),
            ) => {
                let quiet_since = a.sent.saturating_sub(settled(config));
                let touched = faults
                    .iter()
                    .any(|f| f.host == *node && f.from <= a.answered && f.until >= quiet_since);
                if !touched && quiet_since > Duration::ZERO {
                    return fail(format!(
                        "promotion of {node} refused at {:.3}s although no fault touched it \
                         since {:.3}s: {refusal}",
                        a.sent.as_secs_f64(),
                        quiet_since.as_secs_f64()
                    ));
                }
            }
            _ => {}
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

    fn promote(at: u64, force: bool, verdict: Verdict) -> Attempt {
        Attempt {
            sent: ms(at),
            answered: ms(at + 50),
            step: Step::Promote {
                node: "b".to_owned(),
                force,
            },
            verdict,
        }
    }

    fn crashed(from: u64, until: u64) -> InForce {
        InForce {
            host: "b".to_owned(),
            from: ms(from),
            until: ms(until),
            silences: true,
        }
    }

    #[test]
    fn answers_are_judged_by_how_long_the_target_was_silent() {
        let config = LeaseConfig::from_secs(1, 3, 1);
        let accepted = || Verdict::Accepted {
            node: "b".to_owned(),
        };
        let down = [crashed(10_000, 20_000)];
        assert!(check(&[promote(14_000, true, accepted())], &down, &config).is_some());
        assert!(check(&[promote(12_500, false, accepted())], &down, &config).is_some());
        assert_eq!(
            check(&[promote(12_500, true, accepted())], &down, &config),
            None,
            "--force promotes a lagging node"
        );
        let unhealthy = Verdict::Refused(PromoteRefusal::Unhealthy {
            node: "b".to_owned(),
            heartbeat_age_ms: 3_500,
            lease_ttl_ms: 3_000,
        });
        assert_eq!(
            check(&[promote(14_000, true, unhealthy.clone())], &down, &config),
            None
        );
        assert!(
            check(&[promote(30_000, true, unhealthy)], &down, &config).is_some(),
            "a node heartbeating since 20 s is not unhealthy at 30 s"
        );
    }
}
