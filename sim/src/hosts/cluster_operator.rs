//! The operator of the `operator` scenario: gives `projections promote` and
//! `demote` at the planned times through the very functions the CLI runs
//! (`rillflow_adapters::daemon::operator`), so every refusal is core's
//! `check_promote` or the CLI's demote rule judging the model's view.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::daemon::operator::{self, OperatorError};
use rillflow_adapters::daemon::ClusterAdmin;
use rillflow_core::lease::failover::PromoteRefusal;
use rillflow_core::lease::NodeRole;

use crate::client::sim_store::SimLeaseStore;
use crate::harness::trace::{sim_now, Trace};
use crate::hosts::node::CLUSTER;
use crate::scenarios::operator::plan::Step;

/// The operator's host name.
pub const OPERATOR: &str = "operator";

/// What a command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded (a demotion: of this node).
    Accepted {
        /// The node promoted or demoted.
        node: String,
    },
    /// `check_promote` refused it.
    Refused(PromoteRefusal),
    /// Demote: nobody, or not the named node, holds the valid lease.
    NotHot,
    /// No standby to promote (`PromoteStandby` only).
    NoStandby,
    /// Anything else (the database failed, an unknown name).
    Failed(String),
}

/// One command and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it was given (simulated time).
    pub sent: Duration,
    /// When it was answered.
    pub answered: Duration,
    /// The command.
    pub step: Step,
    /// Its answer.
    pub verdict: Verdict,
}

/// Every command the operator gave, in order.
#[derive(Debug, Clone, Default)]
pub struct OperatorLog(Arc<Mutex<Vec<Attempt>>>);

impl OperatorLog {
    fn push(&self, attempt: Attempt) {
        self.0.lock().expect("operator log lock").push(attempt);
    }

    /// A copy of every attempt.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.0.lock().expect("operator log lock").clone()
    }
}

fn verdict_of(result: Result<String, OperatorError>) -> Verdict {
    match result {
        Ok(node) => Verdict::Accepted { node },
        Err(OperatorError::Refused(r)) => Verdict::Refused(r),
        Err(OperatorError::NotHot { .. } | OperatorError::NoHotNode(_)) => Verdict::NotHot,
        Err(other) => Verdict::Failed(other.to_string()),
    }
}

/// Runs `steps`, logging each answer to `log` and the trace.
pub async fn run(steps: Vec<(Duration, Step)>, log: OperatorLog, trace: Trace) -> turmoil::Result {
    let store = SimLeaseStore::default();
    for (at, step) in steps {
        if let Some(wait) = at.checked_sub(sim_now()) {
            tokio::time::sleep(wait).await;
        }
        let sent = sim_now();
        let verdict = match &step {
            Step::Promote { node, force } => verdict_of(
                operator::promote(&store, CLUSTER, node, *force)
                    .await
                    .map(|_| node.clone()),
            ),
            Step::Demote { node } => {
                verdict_of(operator::demote(&store, CLUSTER, node.as_deref()).await)
            }
            Step::PromoteStandby => promote_standby(&store).await,
        };
        trace.record(sim_now(), OPERATOR, format!("{step:?}: {verdict:?}"));
        log.push(Attempt {
            sent,
            answered: sim_now(),
            step,
            verdict,
        });
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// Promotes the first cold node, by name, that heartbeated within two
/// heartbeats and does not hold the valid lease.
async fn promote_standby(store: &SimLeaseStore) -> Verdict {
    let view = match store.cluster_view(CLUSTER).await {
        Ok(Some(view)) => view,
        Ok(None) => return Verdict::Failed("no cluster".to_owned()),
        Err(e) => return Verdict::Failed(e.to_string()),
    };
    let lag_limit = view.timing.heartbeat_ms * 2;
    let Some(target) = view.nodes.iter().find(|n| {
        n.role == NodeRole::Cold
            && n.heartbeat_age_ms <= lag_limit
            && !view.holds_valid_lease(&n.name)
    }) else {
        return Verdict::NoStandby;
    };
    let node = target.name.clone();
    verdict_of(
        operator::promote(store, CLUSTER, &node, false)
            .await
            .map(|_| node),
    )
}
