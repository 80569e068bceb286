//! Everything a run derives from its seed: nodes, clock rates, timing, the
//! fault schedule and what its scenario draws besides (the archive backend,
//! the ownership plan), and the protections switched off. A failure report
//! prints them, so a reader can replay and reason about the run.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rillflow_core::archive::Backend;
use rillflow_core::lease::LeaseConfig;

use super::archive::{self, client_faults};
use super::hot_cold;
use super::operator::{self, plan::OperatorPlan};
use super::ownership::{self, plan::OwnershipPlan};
use super::scenario::Scenario;
use super::without::Without;
use crate::harness::faults::{self, Fault};
use crate::invariants::one_believer;
use crate::model::standby::replay_lag::ReplayLag;

/// Everything a run derives from its seed.
#[derive(Debug, Clone)]
pub struct Params {
    /// The seed.
    pub seed: u64,
    /// Node names.
    pub nodes: Vec<String>,
    /// Each node's clock rate error, ppm.
    pub rates_ppm: Vec<i32>,
    /// Lease timing of every node.
    pub config: LeaseConfig,
    /// Faults stop (and are all undone) here.
    pub heal_at: Duration,
    /// The run ends here.
    pub end_at: Duration,
    /// The fault mix.
    pub scenario: Scenario,
    /// The fault schedule.
    pub faults: Vec<(Duration, Fault)>,
    /// Protections switched off, only to show the checks catch what each
    /// prevents; empty in every real run.
    pub off: BTreeSet<Without>,
    /// The archive backend (archive scenario).
    pub backend: Backend,
    /// Client hosts the schedule may fault (archive scenario).
    pub clients: Vec<String>,
    /// Partition count, joins and repartitions (ownership scenario).
    pub ownership: OwnershipPlan,
    /// Promotions and demotions (operator scenario).
    pub operator: OperatorPlan,
    /// The standby's replay lag over time (standby scenario).
    pub replay_lag: ReplayLag,
}

impl Params {
    /// The parameters of `seed` for a run of about `sim_secs` seconds.
    pub fn from_seed(seed: u64, sim_secs: u64, scenario: Scenario) -> Params {
        Params::from_seed_with(seed, sim_secs, scenario, None)
    }

    /// Like [`from_seed`](Self::from_seed) with the node count fixed.
    pub fn from_seed_with(
        seed: u64,
        sim_secs: u64,
        scenario: Scenario,
        nodes: Option<usize>,
    ) -> Params {
        let mut rng = StdRng::seed_from_u64(seed);
        let drawn = rng.random_range(2..=4);
        // Drawn either way, so an override changes nothing else's draws.
        // Ownership needs a crowd: 3 to 5 workers.
        let drawn = drawn + usize::from(scenario == Scenario::Ownership);
        let count = nodes.unwrap_or(drawn);
        let nodes: Vec<String> = (0..count).map(|i| format!("n{}", i + 1)).collect();
        let rates_ppm = nodes
            .iter()
            .map(|_| rng.random_range(-2_000..=2_000))
            .collect();
        let config = LeaseConfig::from_secs(1, 3, 1);
        let heal_at = Duration::from_secs(sim_secs.max(10) * 2 / 3);
        let learn = one_believer::learning_bound(&config);
        let mut faults = faults::schedule(
            &mut rng,
            scenario.kinds(),
            scenario.session_leases(),
            &nodes,
            heal_at,
            learn,
        );
        let clients = if scenario == Scenario::Archive {
            archive::clients()
        } else {
            Vec::new()
        };
        if !clients.is_empty() {
            faults.extend(client_faults::schedule(&mut rng, &clients, heal_at));
            // Stable: at equal times node faults keep their order.
            faults.sort_by_key(|(at, _)| *at);
        }
        // Drawn last, so the other scenarios' draws stay as they were.
        let backend = if rng.random_bool(0.5) {
            Backend::DualTable
        } else {
            Backend::Partitioned
        };
        // With a projection, the new leader also needs time to catch up
        // on what the writer appended before the heal.
        let catch_up = if scenario.projects() {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
        let ownership = if scenario == Scenario::Ownership {
            OwnershipPlan::draw(&mut rng, nodes.len(), heal_at)
        } else {
            OwnershipPlan::default()
        };
        // Drawn last too, for the same reason.
        let operator = if scenario == Scenario::Operator {
            OperatorPlan::draw(
                &mut rng,
                &nodes,
                &faults,
                heal_at,
                operator::final_at(&config, heal_at),
            )
        } else {
            OperatorPlan::default()
        };
        // Drawn last too.
        let replay_lag = if scenario.reads_standby() {
            ReplayLag::draw(&mut rng, heal_at + catch_up)
        } else {
            ReplayLag::default()
        };
        let end_at = match scenario {
            Scenario::Ownership => {
                heal_at + ownership::settle(&ownership.timing) + ownership::CATCH_UP
            }
            Scenario::Operator => operator::end_at(&config, heal_at),
            _ => heal_at + hot_cold::liveness_bound(&config) + catch_up,
        };
        Params {
            seed,
            nodes,
            rates_ppm,
            config,
            heal_at,
            end_at,
            scenario,
            faults,
            off: BTreeSet::new(),
            backend,
            clients,
            ownership,
            operator,
            replay_lag,
        }
    }

    /// The same run without `protection`.
    pub fn without(mut self, protection: Without) -> Params {
        self.off.insert(protection);
        self
    }

    /// Whether the run does without `protection`.
    pub fn lacks(&self, protection: Without) -> bool {
        self.off.contains(&protection)
    }

    /// The parameters, one per line, for a failure report.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "seed {}\nscenario {}\nnodes {:?}\nclock rates (ppm) {:?}\nheartbeat {:?}, ttl {:?}, grace {:?}, margin {:?}\nheal at {:?}, end at {:?}\n",
            self.seed,
            self.scenario.name(),
            self.nodes,
            self.rates_ppm,
            self.config.heartbeat,
            self.config.lease_ttl,
            self.config.lease_grace,
            self.config.safety_margin,
            self.heal_at,
            self.end_at
        );
        if self.scenario == Scenario::Archive {
            out.push_str(&format!(
                "backend {}, atomic move {}\n",
                self.backend,
                if self.lacks(Without::AtomicMove) {
                    "off"
                } else {
                    "on"
                }
            ));
        }
        if self.scenario == Scenario::Ownership {
            out.push_str(&self.ownership.describe());
            let off: Vec<&str> = [
                (Without::PartitionFence, "partition fence"),
                (Without::Carry, "carry"),
            ]
            .into_iter()
            .filter_map(|(off, name)| self.lacks(off).then_some(name))
            .collect();
            if !off.is_empty() {
                out.push_str(&format!("without: {}\n", off.join(", ")));
            }
        } else if self.lacks(Without::SessionLeases) {
            out.push_str("without: session leases\n");
        }
        if self.scenario == Scenario::Operator {
            out.push_str(&self.operator.describe());
        }
        if self.scenario.reads_standby() {
            out.push_str(&self.replay_lag.describe());
            for (off, name) in [
                (Without::StandbyXmin, "standby xmin"),
                (Without::EpochFloor, "epoch floor"),
            ] {
                if self.lacks(off) {
                    out.push_str(&format!("without: {name}\n"));
                }
            }
        }
        out.push_str("faults:\n");
        for (at, f) in &self.faults {
            out.push_str(&format!("  {:>8.3}s {f:?}\n", at.as_secs_f64()));
        }
        out
    }
}
