//! The `operator` scenario's part of a hot/cold run: an operator host that
//! promotes and demotes at seeded times through the CLI's own functions,
//! and the checks of what its requests may and must do (see
//! `invariants::{promotions, demotions, no_flapping, handoff}`).

pub mod plan;

use std::fmt;
use std::time::Duration;

use rillflow_core::lease::failover::PromoteRefusal;
use rillflow_core::lease::LeaseConfig;

use super::hot_cold::liveness_bound;
use super::params::Params;
use crate::harness::faults::in_force;
use crate::harness::simulation::{MAX_LATENCY, TICK};
use crate::harness::trace::Trace;
use crate::hosts::cluster_operator::{self, Attempt, OperatorLog, Verdict, OPERATOR};
use crate::invariants::handoff::{self, Handoff};
use crate::invariants::{demotions, no_flapping, promotions, Violation};
use crate::model::lease::leases::ModelLeases;
use crate::scenarios::operator::plan::Step;

/// The slowest one-way message: turmoil's latency cap and a step.
fn one_way() -> Duration {
    MAX_LATENCY + TICK
}

/// The last promotion, of a standby: once LEASE-3's bound after the heal
/// has passed, so a node is hot and the cluster is settled.
pub fn final_at(config: &LeaseConfig, heal_at: Duration) -> Duration {
    heal_at + liveness_bound(config)
}

/// The run ends once the last promotion had its handoff bound, and a
/// second more.
pub fn end_at(config: &LeaseConfig, heal_at: Duration) -> Duration {
    final_at(config, heal_at) + handoff::bound(config, one_way()) + Duration::from_secs(1)
}

/// Adds the operator host; it reports to `log`.
pub fn add_operator(sim: &mut turmoil::Sim<'_>, params: &Params, log: &OperatorLog, trace: &Trace) {
    let (steps, log, trace) = (params.operator.steps.clone(), log.clone(), trace.clone());
    sim.host(OPERATOR, move || {
        cluster_operator::run(steps.clone(), log.clone(), trace.clone())
    });
}

/// The first operator invariant the run broke, or what its promotions'
/// handoffs took.
pub fn check(
    params: &Params,
    lease: &ModelLeases,
    trace: &Trace,
    attempts: &[Attempt],
    end: Duration,
) -> Result<Vec<Handoff>, Violation> {
    let config = &params.config;
    let faults = in_force(&params.faults, params.heal_at);
    let releases = trace.releases();
    let first = promotions::check(attempts, &faults, config)
        .or_else(|| no_flapping::check(&lease.grants, config.min_failover_interval))
        .or_else(|| {
            demotions::check_stops(
                &lease.operator_requests,
                &lease.grants,
                &lease.writes,
                &faults,
                config,
                one_way(),
            )
        })
        .or_else(|| {
            demotions::check_stands_by(
                &releases,
                &lease.grants,
                &params.faults,
                config.demote_holdoff,
            )
        });
    if let Some(v) = first {
        return Err(v);
    }
    handoff::check(
        attempts,
        &lease.grants,
        &lease.writes,
        &releases,
        &faults,
        config,
        one_way(),
        liveness_bound(config),
        end,
    )
}

/// What the operator scenario exercised, for the report line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorSummary {
    /// Promotions recorded (with `--force`).
    pub promoted: usize,
    /// Of which with `--force`.
    pub forced: usize,
    /// Promotions refused: stopped, not running, lagging, already hot.
    pub refused: [usize; 4],
    /// Demotions recorded.
    pub demoted: usize,
    /// Demotions refused: nobody (or not that node) was hot.
    pub not_hot: usize,
    /// Grants that fulfilled a promotion.
    pub promoted_grants: usize,
    /// Automatic failovers.
    pub failovers: usize,
    /// Handoffs judged against the bound, and how long they took.
    pub handoffs: Vec<Handoff>,
}

impl OperatorSummary {
    /// Counts `attempts` and the grants.
    pub fn of(attempts: &[Attempt], lease: &ModelLeases, handoffs: Vec<Handoff>) -> Self {
        let mut s = OperatorSummary {
            handoffs,
            ..OperatorSummary::default()
        };
        for a in attempts {
            match (&a.step, &a.verdict) {
                (Step::Demote { .. }, Verdict::Accepted { .. }) => s.demoted += 1,
                (Step::Demote { .. }, _) => s.not_hot += 1,
                (Step::Promote { force, .. }, Verdict::Accepted { .. }) => {
                    s.promoted += 1;
                    s.forced += usize::from(*force);
                }
                (Step::PromoteStandby, Verdict::Accepted { .. }) => s.promoted += 1,
                (_, Verdict::Refused(r)) => {
                    let i = match r {
                        PromoteRefusal::Stopped { .. } | PromoteRefusal::UnknownNode { .. } => 0,
                        PromoteRefusal::Unhealthy { .. } => 1,
                        PromoteRefusal::Lagging { .. } => 2,
                        PromoteRefusal::AlreadyHot { .. } => 3,
                    };
                    s.refused[i] += 1;
                }
                _ => {}
            }
        }
        s.promoted_grants = lease.grants.iter().filter(|g| g.promoted).count();
        s.failovers = lease
            .grants
            .iter()
            .filter(|g| g.failover && !g.promoted)
            .count();
        s
    }
}

impl fmt::Display for OperatorSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [stopped, dead, lagging, hot] = self.refused;
        write!(
            f,
            "operator: {} promoted ({} forced), refused {stopped} stopped, {dead} not running, \
             {lagging} lagging, {hot} already hot; {} demoted, {} with nobody to demote; \
             {} promoted grants, {} automatic failovers",
            self.promoted,
            self.forced,
            self.demoted,
            self.not_hot,
            self.promoted_grants,
            self.failovers
        )?;
        for h in &self.handoffs {
            write!(f, "; handoff {} ms", h.took.as_millis())?;
        }
        Ok(())
    }
}
