//! One run of the ownership scenario: worker hosts running the production
//! ownership driver and owned worker, a writer, an operator repartitioning,
//! the faults, then the checks (PROJ-1, PROJ-4 and its liveness).

pub mod plan;
pub mod summary;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_core::ownership::OwnerTiming;

use super::outcome::Outcome;
use super::params::Params;
use super::without::Without;
use crate::client::sim_batches::PROJECTION;
use crate::client::sim_store::Pauses;
use crate::harness::fault_loop::{drive, Schedule, Targets};
use crate::harness::simulation::{serve_db, simulation};
use crate::harness::trace::Trace;
use crate::hosts::operator::{self, OPERATOR};
use crate::hosts::worker::{self, WorkerSpec, WorkerStops};
use crate::hosts::writer;
use crate::invariants::{exactly_once, fair_ownership, graceful_stop, single_owner};
use crate::model::db::ModelDb;
use crate::model::log::event_log::LogEvent;
use crate::scenarios::ownership::summary::OwnershipSummary;

/// After the heal the writer has stopped; the workers get this long, past
/// the liveness bound, to apply what is left.
pub const CATCH_UP: Duration = Duration::from_secs(5);

/// Streams the writer appends to: enough that every partition of up to
/// eight gets some.
const STREAMS: u32 = 32;

/// The liveness bound after healing: a lease left by the faults runs out
/// within a ttl, the workers see it at their next heartbeat and claim at
/// the one after (partitions held over quota are released in the first of
/// those rounds and claimed in the second).
pub fn settle(timing: &OwnerTiming) -> Duration {
    timing.ttl + timing.heartbeat * 2
}

/// How soon a worker asked to stop has stopped its batches: its running
/// batch may take up to the batch timeout (the lease ttl), then it looks
/// at the stop before the next (poll interval and a margin).
pub fn stop_bound(timing: &OwnerTiming) -> Duration {
    timing.ttl + Duration::from_millis(100)
}

/// Runs `params` (an ownership scenario) to the end and checks it.
pub fn run(params: &Params) -> Outcome {
    let plan = &params.ownership;
    let mut sim = simulation(params.seed, params.end_at);
    let trace = Trace::default();
    let mut model = ModelDb::default();
    model.ownership.fence_disabled = params.lacks(Without::PartitionFence);
    model.ownership.carry_disabled = params.lacks(Without::Carry);
    model
        .ownership
        .projection
        .register(PROJECTION, plan.initial_partitions);
    let db = Arc::new(Mutex::new(model));
    serve_db(
        &mut sim,
        &params.config,
        !params.lacks(Without::IdleTimeout),
        &db,
        &trace,
    );
    {
        let (seed, stop_at, trace) = (params.seed, params.heal_at, trace.clone());
        sim.host("writer", move || {
            writer::run_streams(seed, stop_at, STREAMS, trace.clone())
        });
    }
    {
        let (resizes, stop_at, trace) = (plan.repartitions.clone(), params.heal_at, trace.clone());
        sim.host(OPERATOR, move || {
            operator::run(resizes.clone(), stop_at, trace.clone())
        });
    }
    let pauses = Pauses::default();
    let stops = WorkerStops::default();
    for (i, name) in params.nodes.iter().enumerate() {
        let spec = WorkerSpec {
            name: name.clone(),
            rate_ppm: params.rates_ppm[i],
            start_at: plan.starts[i],
            timing: plan.timing,
            pauses: pauses.clone(),
            stops: stops.clone(),
            boots: Arc::new(AtomicU64::new(0)),
        };
        let trace = trace.clone();
        sim.host(name.as_str(), move || {
            worker::run(spec.clone(), trace.clone())
        });
    }

    let stop = |worker: &str| {
        stops.stop(worker);
    };
    let settled = params.heal_at + settle(&plan.timing);
    let mut unfair = None;
    let hosts: Vec<&String> = params.nodes.iter().collect();
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
    let violation = drive(targets, schedule, &hosts, |now| {
        if unfair.is_none() && now >= settled {
            let snapshot = snapshot(&db.lock().expect("db lock"), now, &plan.timing);
            unfair = fair_ownership::check(&snapshot, &params.nodes);
        }
    });

    let end = sim.elapsed();
    let db = db.lock().expect("db lock");
    let committed = committed(&db);
    let history = &db.ownership.projection;
    let violation = violation.or_else(|| {
        [
            single_owner::check(&history.commits),
            exactly_once::check(&committed, &history.applied, end),
            unfair,
            graceful_stop::check(
                &stops.records(),
                &params.faults,
                stop_bound(&plan.timing),
                end,
            ),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|v| v.at)
    });
    let summary = OwnershipSummary::of(&db.ownership, params.nodes.len(), committed.len());
    let events = trace.events();
    let hash = Trace::hash(&events);
    Outcome {
        violation,
        hash,
        events,
        takeovers: Vec::new(),
        grants: summary.claims,
        writes: summary.batches,
        refused_writes: summary.fenced,
        events_committed: committed.len(),
        archive: None,
        ownership: Some(summary),
        operator: None,
    }
}

/// The projection's ownership as the database shows it at `now`.
fn snapshot(db: &ModelDb, now: Duration, timing: &OwnerTiming) -> fair_ownership::Snapshot {
    let leases = &db.ownership.leases;
    fair_ownership::Snapshot {
        at: now,
        partitions: db.ownership.projection.count(PROJECTION),
        live: leases.live_workers(now, PROJECTION, timing.ttl),
        holders: leases.holders(now, PROJECTION),
    }
}

/// Every committed event, in feed order.
fn committed(db: &ModelDb) -> Vec<LogEvent> {
    let mut events: Vec<LogEvent> = db
        .log
        .events()
        .rows()
        .all()
        .map(|(_, row)| row.event)
        .collect();
    events.sort();
    events.dedup();
    events
}
