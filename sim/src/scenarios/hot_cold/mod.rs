//! The hot/cold scenarios: daemon nodes running the production driver loop
//! over one lease, under a fault mix (`chaos`, `crashes`, `network`,
//! `pauses`, `db-restarts`, `locks`, `sessions`), with a projection and
//! writers in `projections` and the archive's clients in `archive`. Checks
//! LEASE-1 to LEASE-3, and the projection's and archive's invariants when
//! they run.

pub mod failover_times;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::daemon::daemon_pool_config;
use rillflow_core::lease::LeaseConfig;

use super::archive::{self, summary::ArchiveSummary};
use super::operator::{self, OperatorSummary};
use super::outcome::Outcome;
use super::params::Params;
use super::projections;
use super::scenario::Scenario;
use super::without::Without;
use crate::client::sim_store::Pauses;
use crate::harness::fault_loop::{drive, Schedule, Targets};
use crate::harness::simulation::{serve_db, simulation, MAX_LATENCY, TICK};
use crate::harness::trace::Trace;
use crate::hosts::archive::ledger::Ledger;
use crate::hosts::cluster_operator::OperatorLog;
use crate::hosts::node::{self, NodeSpec, Stops, CLUSTER};
use crate::invariants::one_believer::{self, Lifecycle};
use crate::invariants::session_takeover::SessionTakeover;
use crate::invariants::{liveness, single_writer, unique_epochs};
use crate::model::db::ModelDb;
use crate::model::lease::records::{OperatorRecord, OperatorRequest};
use crate::model::log::event_log::ModelLog;
use crate::model::log::events::ModelEvents;
use crate::model::standby::replica::Standby;

/// LEASE-3's bound after healing: the last lease can run a full ttl, then
/// the grace, then a heartbeat until a standby looks, plus one request
/// timeout for a request that was in flight when the faults stopped.
pub fn liveness_bound(config: &LeaseConfig) -> Duration {
    config.lease_ttl + config.lease_grace + config.heartbeat + config.request_timeout
}

/// Runs `params` (a hot/cold scenario) to the end and checks every
/// invariant.
pub fn run(params: &Params) -> Outcome {
    let mut sim = simulation(params.seed, params.end_at);
    let trace = Trace::default();
    let mut model = ModelDb::default();
    model.lease.fence_disabled = params.lacks(Without::Fence);
    model.log = ModelLog::new(ModelEvents::new(params.backend));
    model.log.horizon_disabled = params.lacks(Without::Horizon);
    model.log.events_mut().floor_check_disabled = params.lacks(Without::FloorCheck);
    model.lease.epoch_floor_disabled = params.lacks(Without::EpochFloor);
    if params.scenario.reads_standby() {
        let mut standby = Standby::new(
            params.replay_lag.clone(),
            Duration::ZERO,
            &model.lease,
            &model.log,
        );
        standby.in_progress_list = params.lacks(Without::StandbyXmin);
        model.standby = Some(standby);
    }
    let db = Arc::new(Mutex::new(model));
    serve_db(
        &mut sim,
        &params.config,
        !params.lacks(Without::IdleTimeout),
        &db,
        &trace,
    );
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
            read_replica: params.scenario.reads_standby(),
            session_leases: params.scenario.session_leases()
                && !params.lacks(Without::SessionLeases),
        };
        let trace = trace.clone();
        sim.host(name.as_str(), move || {
            node::run(spec.clone(), trace.clone())
        });
    }
    if matches!(params.scenario, Scenario::Projections | Scenario::Standby) {
        projections::add_writer(&mut sim, params, &trace);
    }
    let ledger = Ledger::default();
    if params.scenario == Scenario::Archive {
        archive::add_clients(&mut sim, params, &ledger, &trace);
    }
    let operator_log = OperatorLog::default();
    if params.scenario == Scenario::Operator {
        operator::add_operator(&mut sim, params, &operator_log, &trace);
    }

    let stop = |node: &str| {
        stops.stop(node);
    };
    let hosts: Vec<&String> = params.nodes.iter().chain(&params.clients).collect();
    let targets = Targets {
        sim: &mut sim,
        pauses: &pauses,
        stop: &stop,
        db: &db,
        trace: &trace,
    };
    let schedule = Schedule {
        faults: &params.faults,
        heal_at: params.heal_at,
        end_at: params.end_at,
    };
    let violation = drive(targets, schedule, &hosts, |_| {});

    let end = sim.elapsed();
    let db = db.lock().expect("db lock");
    let beliefs = trace.beliefs();
    let learn = one_believer::learning_bound(&params.config);
    let bound_to_sessions = params.scenario.session_leases();
    let life = Lifecycle::of(&params.faults, bound_to_sessions, learn);
    let sessions = bound_to_sessions.then(|| {
        session_takeover(params)
            .with_releases(trace.releases())
            .with_promotions(promotions(&db.lease.operator_requests))
    });
    let violation = violation
        .or_else(|| unique_epochs::check(&db.lease.grants, &db.lease.writes))
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
            let projected = projections::check(params, &db.log, end);
            let archived = (params.scenario == Scenario::Archive)
                .then(|| archive::check(params, &db.log, &ledger, end))
                .flatten();
            [archived, projected]
                .into_iter()
                .flatten()
                .min_by_key(|v| v.at)
        });
    let (violation, operator) = if params.scenario == Scenario::Operator {
        let attempts = operator_log.attempts();
        let (found, handoffs) = match operator::check(params, &db.lease, &trace, &attempts, end) {
            Ok(handoffs) => (None, handoffs),
            Err(v) => (Some(v), Vec::new()),
        };
        (
            violation.or(found),
            Some(OperatorSummary::of(&attempts, &db.lease, handoffs)),
        )
    } else {
        (violation, None)
    };
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
        operator,
    }
}

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

/// The promotions the database recorded, whom and when.
fn promotions(requests: &[OperatorRecord]) -> Vec<(String, Duration)> {
    requests
        .iter()
        .filter(|r| r.written)
        .filter_map(|r| match &r.request {
            OperatorRequest::Promote { node, .. } => Some((node.clone(), r.at)),
            OperatorRequest::Demote { .. } => None,
        })
        .collect()
}
