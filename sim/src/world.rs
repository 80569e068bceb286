//! One simulated run: parameters from a seed, the hosts, the faults, the
//! checks.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rillflow_adapters::daemon::daemon_pool_config;
use rillflow_core::archive::Backend;
use rillflow_core::lease::LeaseConfig;

use crate::archive_run;
use crate::archive_summary::ArchiveSummary;
use crate::client::sim_store::Pauses;
use crate::client_faults;
use crate::db::{self, SessionTimeouts};
use crate::exclusive::exclusive;
use crate::failover_times::{self, Takeover};
use crate::faults::{self, Fault, Scenario, FREEZE_START};
use crate::hosts::archive::ledger::Ledger;
use crate::hosts::node::{self, NodeSpec, Stops, CLUSTER};
use crate::hosts::writer;
use crate::invariants::one_believer::{self, Lifecycle};
use crate::invariants::session_takeover::SessionTakeover;
use crate::invariants::{liveness, projections, single_writer, Violation};
use crate::model::db::ModelDb;
use crate::model::log::event_log::ModelLog;
use crate::model::log::events::ModelEvents;
use crate::ownership_plan::OwnershipPlan;
use crate::ownership_run;
use crate::ownership_summary::OwnershipSummary;
use crate::trace::{Trace, TraceEvent};

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
    /// Off only to show the checks catch a missing fence.
    pub fence_disabled: bool,
    /// Off only to show the checks catch a database that never ends a
    /// frozen client's transaction.
    pub idle_timeout_disabled: bool,
    /// Off only to show the checks catch a projection reader that ignores
    /// open appends (`position > checkpoint` style).
    pub horizon_disabled: bool,
    /// Off only to show the checks catch an append in a transaction that
    /// readers passed before it registered (no RF007 refusal).
    pub floor_check_disabled: bool,
    /// The archive backend (archive scenario).
    pub backend: Backend,
    /// Client hosts the schedule may fault (archive scenario).
    pub clients: Vec<String>,
    /// Off only to show the checks catch a mover that copies and deletes
    /// in two transactions.
    pub atomic_move_disabled: bool,
    /// Partition count, joins and repartitions (ownership scenario).
    pub ownership: OwnershipPlan,
    /// Off only to show the checks catch partition batches that commit
    /// without checking their lease's epoch.
    pub partition_fence_disabled: bool,
    /// Off only to show the checks catch a repartition that drops the
    /// carried checkpoints.
    pub carry_disabled: bool,
    /// Off only to show the checks catch a crash whose lease waits for its
    /// ttl: the nodes run with `--session-leases off`, the checks still
    /// expect what session-bound leases promise.
    pub session_leases_disabled: bool,
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
        let mut faults = faults::schedule(&mut rng, scenario, &nodes, heal_at, learn);
        let clients = if scenario == Scenario::Archive {
            archive_run::clients()
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
        let end_at = if scenario == Scenario::Ownership {
            heal_at + ownership_run::settle(&ownership.timing) + ownership_run::CATCH_UP
        } else {
            heal_at + liveness_bound(&config) + catch_up
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
            fence_disabled: false,
            idle_timeout_disabled: false,
            horizon_disabled: false,
            floor_check_disabled: false,
            backend,
            clients,
            atomic_move_disabled: false,
            ownership,
            partition_fence_disabled: false,
            carry_disabled: false,
            session_leases_disabled: false,
        }
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
                if self.atomic_move_disabled {
                    "off"
                } else {
                    "on"
                }
            ));
        }
        if self.scenario == Scenario::Ownership {
            out.push_str(&self.ownership.describe());
            let off: Vec<&str> = [
                (self.partition_fence_disabled, "partition fence"),
                (self.carry_disabled, "carry"),
            ]
            .into_iter()
            .filter_map(|(off, name)| off.then_some(name))
            .collect();
            if !off.is_empty() {
                out.push_str(&format!("without: {}\n", off.join(", ")));
            }
        } else if self.session_leases_disabled {
            out.push_str("without: session leases\n");
        }
        out.push_str("faults:\n");
        for (at, f) in &self.faults {
            out.push_str(&format!("  {:>8.3}s {f:?}\n", at.as_secs_f64()));
        }
        out
    }
}

/// LEASE-3's bound after healing: the last lease can run a full ttl, then
/// the grace, then a heartbeat until a standby looks, plus one request
/// timeout for a request that was in flight when the faults stopped.
pub fn liveness_bound(config: &LeaseConfig) -> Duration {
    config.lease_ttl + config.lease_grace + config.heartbeat + config.request_timeout
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The first violated invariant, if any.
    pub violation: Option<Violation>,
    /// The whole trace.
    pub events: Vec<TraceEvent>,
    /// Its hash.
    pub hash: u64,
    /// Takeovers after the hot node crashed or its session ended.
    pub takeovers: Vec<Takeover>,
    /// Grants made.
    pub grants: usize,
    /// Committed writes.
    pub writes: usize,
    /// Writes the fence refused.
    pub refused_writes: usize,
    /// Events the writer committed (projections scenario).
    pub events_committed: usize,
    /// What the archive scenario exercised.
    pub archive: Option<ArchiveSummary>,
    /// What the ownership scenario exercised.
    pub ownership: Option<OwnershipSummary>,
}

/// Runs `params` to the end and checks every invariant.
pub fn run(params: &Params) -> Outcome {
    let _alone = exclusive();
    if params.scenario == Scenario::Ownership {
        return ownership_run::run(params);
    }
    let mut sim = simulation(params);
    let trace = Trace::default();
    let mut model = ModelDb::default();
    model.lease.fence_disabled = params.fence_disabled;
    model.log = ModelLog::new(ModelEvents::new(params.backend));
    model.log.horizon_disabled = params.horizon_disabled;
    model.log.events_mut().floor_check_disabled = params.floor_check_disabled;
    let db = Arc::new(Mutex::new(model));
    serve_db(&mut sim, params, &db, &trace);
    let pauses = Pauses::default();
    let stops = Stops::default();
    for (i, name) in params.nodes.iter().enumerate() {
        let spec = NodeSpec {
            name: name.clone(),
            config: params.config.clone(),
            rate_ppm: params.rates_ppm[i],
            // Distinct daemon ids per node, all from the run's seed.
            seed: params.seed ^ ((i as u64 + 1) << 56),
            pauses: pauses.clone(),
            stops: stops.clone(),
            boots: Arc::new(AtomicU64::new(0)),
            projections: params.scenario.projects(),
            session_leases: params.scenario.session_leases() && !params.session_leases_disabled,
        };
        let trace = trace.clone();
        sim.host(name.as_str(), move || {
            node::run(spec.clone(), trace.clone())
        });
    }
    if params.scenario == Scenario::Projections {
        let (seed, stop_at, trace) = (params.seed, params.heal_at, trace.clone());
        sim.host("writer", move || writer::run(seed, stop_at, trace.clone()));
    }
    let ledger = Ledger::default();
    if params.scenario == Scenario::Archive {
        archive_run::add_clients(&mut sim, params, &ledger, &trace);
    }

    let mut pending = params.faults.iter().peekable();
    let mut violation = None;
    let mut healed = false;
    let stop = |node: &str| {
        stops.stop(node);
    };
    while sim.elapsed() < params.end_at {
        if !healed && sim.elapsed() >= params.heal_at {
            healed = true;
            let hosts: Vec<&String> = params.nodes.iter().chain(&params.clients).collect();
            heal(&mut sim, &pauses, &hosts, &trace);
        }
        while let Some((at, fault)) = pending.peek() {
            if *at > sim.elapsed() {
                break;
            }
            trace.record(*at, "faults", format!("{fault:?}"));
            apply(&mut sim, &pauses, &stop, &db, &trace, fault);
            pending.next();
        }
        if let Err(e) = sim.step() {
            violation = Some(Violation {
                invariant: "SIM",
                at: sim.elapsed(),
                detail: format!("a host failed: {e}"),
            });
            break;
        }
    }

    let end = sim.elapsed();
    let db = db.lock().expect("db lock");
    let beliefs = trace.beliefs();
    let learn = one_believer::learning_bound(&params.config);
    let bound_to_sessions = params.scenario.session_leases();
    let life = Lifecycle::of(&params.faults, bound_to_sessions, learn);
    let sessions =
        bound_to_sessions.then(|| session_takeover(params).with_releases(trace.releases()));
    let violation = violation
        .or_else(|| single_writer::check(&db.lease.writes))
        .or_else(|| one_believer::check(&beliefs, &db.lease.grants, end, &life))
        .or_else(|| {
            let bound = liveness_bound(&params.config);
            liveness::check_takeovers(
                &params.faults,
                &trace.freezes(),
                &db.lease.grants,
                &db.lease.writes,
                bound,
                params.heal_at,
                sessions.as_ref(),
            )
        })
        .or_else(|| liveness::check(params.heal_at, end, db.valid_leader(end, CLUSTER), &beliefs))
        .or_else(|| {
            // The earliest of what the archive and projection checks found:
            // a mover's fault shows in both, first where it happened.
            let projected = params
                .scenario
                .projects()
                .then(|| projections::check(&db.log, end))
                .flatten();
            let archived = (params.scenario == Scenario::Archive)
                .then(|| archive_run::check(params, &db.log, &ledger, end))
                .flatten();
            [archived, projected]
                .into_iter()
                .flatten()
                .min_by_key(|v| v.at)
        });
    let archive = (params.scenario == Scenario::Archive).then(|| {
        ArchiveSummary::of(
            params.backend,
            db.log.events().history(),
            ledger.intents().values(),
            ledger.counts(),
        )
    });
    let events = trace.events();
    let hash = Trace::hash(&events);
    let takeovers = failover_times::takeovers(
        &params.faults,
        &db.lease.grants,
        &db.lease.writes,
        params.heal_at,
        sessions.as_ref(),
    );
    Outcome {
        violation,
        hash,
        events,
        takeovers,
        grants: db.lease.grants.len(),
        writes: db.lease.writes.len(),
        refused_writes: db.lease.refused_writes,
        events_committed: db.log.committed(),
        archive,
        ownership: None,
    }
}

/// The simulation's step.
pub const TICK: Duration = Duration::from_millis(10);
/// The longest a message takes on the network.
pub const MAX_LATENCY: Duration = Duration::from_millis(20);

/// What LEASE-3's bound after a lease session ended derives from (see
/// `invariants::session_takeover`): a message arrives within the latency
/// cap, seen by its receiver at the next step.
pub fn session_takeover(params: &Params) -> SessionTakeover {
    let lock_timeout = daemon_pool_config(&params.config).lock_timeout;
    SessionTakeover::new(
        &params.config,
        lock_timeout,
        MAX_LATENCY + TICK,
        &params.nodes,
    )
}

/// The simulation of `params`: 10 ms ticks, messages taking 1–20 ms, its
/// randomness from the seed.
pub(crate) fn simulation<'a>(params: &Params) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .simulation_duration(params.end_at + Duration::from_secs(60))
        .tick_duration(TICK)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(MAX_LATENCY)
        .rng_seed(params.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .build()
}

/// Adds the `db` host serving `db`, with the daemon's session timeouts.
pub(crate) fn serve_db(
    sim: &mut turmoil::Sim<'_>,
    params: &Params,
    db: &Arc<Mutex<ModelDb>>,
    trace: &Trace,
) {
    let (db, trace) = (db.clone(), trace.clone());
    let pool = daemon_pool_config(&params.config);
    let idle = if params.idle_timeout_disabled {
        Duration::from_secs(86_400)
    } else {
        pool.idle_in_transaction_timeout
    };
    let timeouts = SessionTimeouts {
        lock: pool.lock_timeout,
        idle_in_transaction: idle,
    };
    sim.host("db", move || db::serve(db.clone(), trace.clone(), timeouts));
}

/// The end of the safety phase: whatever a fault left behind (a freeze the
/// database host was to end, a plan not carried out) ends here.
pub(crate) fn heal(sim: &mut turmoil::Sim<'_>, pauses: &Pauses, hosts: &[&String], trace: &Trace) {
    pauses.clear();
    for host in hosts {
        sim.repair(host.as_str(), "db");
        sim.release(host.as_str(), "db");
    }
    trace.record(sim.elapsed(), "faults", "healed".to_owned());
}

/// Applies one fault; `stop` asks a host to stop gracefully.
pub(crate) fn apply(
    sim: &mut turmoil::Sim<'_>,
    pauses: &Pauses,
    stop: &dyn Fn(&str),
    db: &Arc<Mutex<ModelDb>>,
    trace: &Trace,
    fault: &Fault,
) {
    match fault {
        Fault::Crash(n) => sim.crash(n.as_str()),
        Fault::Restart(n) => sim.bounce(n.as_str()),
        Fault::Partition(n) => sim.partition(n.as_str(), "db"),
        Fault::PartitionToDb(n) => sim.partition_oneway(n.as_str(), "db"),
        Fault::PartitionFromDb(n) => sim.partition_oneway("db", n.as_str()),
        Fault::Repair(n) => {
            sim.repair(n.as_str(), "db");
        }
        Fault::Hold(n) => sim.hold(n.as_str(), "db"),
        Fault::Release(n) => sim.release(n.as_str(), "db"),
        Fault::Freeze { node, length_ms } => {
            let length = Duration::from_millis(*length_ms);
            pauses.plan(node, length, sim.elapsed() + length);
            sim.hold(node.as_str(), "db");
        }
        Fault::Thaw(n) => sim.release(n.as_str(), "db"),
        Fault::FreezeInTransaction { node, length_ms } => pauses.plan_freeze(
            node,
            Duration::from_millis(*length_ms),
            sim.elapsed() + FREEZE_START,
        ),
        Fault::Stop(n) => stop(n),
        Fault::EndSession(n) => {
            // The host's session tasks see it and close their connections.
            let keys = db.lock().expect("db lock").sessions.end_node(n);
            let keys: Vec<String> = keys.iter().map(|k| format!("{k:#x}")).collect();
            trace.record(
                sim.elapsed(),
                "db",
                format!(
                    "ended the lease sessions of {n}: keys [{}]",
                    keys.join(", ")
                ),
            );
        }
        Fault::CrashDb => sim.crash("db"),
        Fault::RestartDb => sim.bounce("db"),
    }
}
