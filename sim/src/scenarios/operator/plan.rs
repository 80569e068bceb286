//! What the operator scenario draws from its seed besides the faults: when
//! the operator promotes or demotes, whom, and with `--force` or not.
//! Some promotions name the node a fault is silencing at that moment, so
//! refusals of dead and lagging nodes are exercised on every seed.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::faults::Fault;

/// One operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `projections promote --node NODE [--force]`.
    Promote {
        /// The node.
        node: String,
        /// `--force`.
        force: bool,
    },
    /// `projections demote [--node NODE]`.
    Demote {
        /// The node named; None: the hot node.
        node: Option<String>,
    },
    /// After the heal: promote the first live standby by name, as an
    /// operator moving the hot role to a healthy node would.
    PromoteStandby,
}

/// The operator scenario's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorPlan {
    /// Commands and when they are given, in time order.
    pub steps: Vec<(Duration, Step)>,
}

/// The node `fault` silences, as far as the database can tell: its
/// heartbeats stop reaching the database.
pub fn silenced(fault: &Fault) -> Option<&str> {
    match fault {
        Fault::Crash(n)
        | Fault::Stop(n)
        | Fault::Partition(n)
        | Fault::PartitionToDb(n)
        | Fault::Hold(n)
        | Fault::Freeze { node: n, .. } => Some(n),
        _ => None,
    }
}

impl OperatorPlan {
    /// Commands from 2 s on, one every 1 to 5 s until `heal_at`, then a
    /// promotion of a standby at `final_at`.
    pub fn draw(
        rng: &mut StdRng,
        nodes: &[String],
        faults: &[(Duration, Fault)],
        heal_at: Duration,
        final_at: Duration,
    ) -> Self {
        let mut steps = Vec::new();
        let mut t = Duration::from_millis(rng.random_range(2_000..4_000));
        while t < heal_at {
            let any = nodes[rng.random_range(0..nodes.len())].clone();
            // The node the latest fault so far silences, if any.
            let silenced_now = faults
                .iter()
                .take_while(|(at, _)| *at <= t)
                .filter_map(|(_, f)| silenced(f))
                .last()
                .map(str::to_owned);
            let step = if rng.random_bool(0.6) {
                let node = match silenced_now {
                    Some(n) if rng.random_bool(0.5) => n,
                    _ => any,
                };
                Step::Promote {
                    node,
                    force: rng.random_bool(0.35),
                }
            } else {
                Step::Demote {
                    node: rng.random_bool(0.3).then_some(any),
                }
            };
            steps.push((t, step));
            t += Duration::from_millis(rng.random_range(1_000..5_000));
        }
        steps.push((final_at, Step::PromoteStandby));
        OperatorPlan { steps }
    }

    /// One line per command, for a failure report.
    pub fn describe(&self) -> String {
        let mut out = String::from("operator:\n");
        for (at, step) in &self.steps {
            out.push_str(&format!("  {:>8.3}s {step:?}\n", at.as_secs_f64()));
        }
        out
    }
}
