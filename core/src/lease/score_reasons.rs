//! Why a cluster's health score is below 100: each part of the score it
//! lost, with the reason, as an operator reads it.

use serde::Serialize;

use super::health::ClusterHealth;

/// One part of the score a cluster lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deduction {
    /// Points lost (before the score is rounded down), 0 to 100.
    pub points: f64,
    /// What lowers it.
    pub reason: String,
}

/// The parts of [`super::health::evaluate`]'s score that `health` lost, in
/// the formula's order; empty for a perfect score. Their points add up to
/// 100 minus the unrounded score.
pub fn deductions(health: &ClusterHealth) -> Vec<Deduction> {
    if health.total_nodes == 0 {
        return vec![Deduction {
            points: 100.0,
            reason: "no node has reported".to_owned(),
        }];
    }
    let mut out = Vec::new();
    if health.hot_nodes != 1 {
        let reason = match &health.leader {
            Some(leader) if health.lease_remaining_ms.is_some_and(|ms| ms <= 0) => {
                format!("no hot node: the lease of {leader} expired and nobody took it over yet")
            }
            Some(leader) => {
                format!("no hot node: {leader} holds the lease but has stopped reporting")
            }
            None => "no hot node: no lease was ever granted".to_owned(),
        };
        out.push(Deduction {
            points: 50.0,
            reason,
        });
    }
    let required = health.min_cold_standbys;
    if required > 0 && health.standby_nodes < required {
        let missing = required - health.standby_nodes;
        out.push(Deduction {
            points: 30.0 * f64::from(missing) / f64::from(required),
            reason: format!(
                "{} of {required} required standbys online",
                health.standby_nodes
            ),
        });
    }
    let live: Vec<_> = health.nodes.iter().filter(|n| n.live).collect();
    let fresh_limit = health.timing.heartbeat_ms.saturating_mul(2);
    let stale: Vec<&str> = live
        .iter()
        .filter(|n| n.heartbeat_age_ms > fresh_limit)
        .map(|n| n.name.as_str())
        .collect();
    if live.is_empty() {
        out.push(Deduction {
            points: 20.0,
            reason: "no node is live (none heard from within the lease ttl)".to_owned(),
        });
    } else if !stale.is_empty() {
        out.push(Deduction {
            points: 20.0 * stale.len() as f64 / live.len() as f64,
            reason: format!(
                "heartbeats older than two intervals ({} ms) from: {}",
                fresh_limit,
                stale.join(", ")
            ),
        });
    }
    out
}
