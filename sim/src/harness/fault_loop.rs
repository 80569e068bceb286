//! The safety phase and the heal, shared by every scenario: step the
//! simulation, apply each fault at its time, and at the heal undo whatever
//! a fault left behind. A scenario adds its hosts before and its checks
//! after; it never repeats this loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::sim_store::Pauses;
use crate::harness::db_faults::DbFaults;
use crate::harness::faults::{Fault, FREEZE_START};
use crate::harness::trace::Trace;
use crate::invariants::Violation;
use crate::model::db::ModelDb;

/// When faults happen and the run ends.
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    /// The faults, in time order.
    pub faults: &'a [(Duration, Fault)],
    /// Faults stop (and are all undone) here.
    pub heal_at: Duration,
    /// The run ends here.
    pub end_at: Duration,
}

/// What the faults act on: the simulation, the planned pauses, a way to
/// stop a host gracefully, and the database (which ends sessions).
pub struct Targets<'a, 'sim> {
    /// The simulation.
    pub sim: &'a mut turmoil::Sim<'sim>,
    /// Pauses planned for the nodes' stores.
    pub pauses: &'a Pauses,
    /// Asks a host to stop gracefully.
    pub stop: &'a dyn Fn(&str),
    /// The model database.
    pub db: &'a Arc<Mutex<ModelDb>>,
    /// The run's trace.
    pub trace: &'a Trace,
}

/// Runs the simulation to `schedule.end_at`, applying the faults and
/// healing the links of `hosts` at the heal; `after_step` sees the time
/// after each step. A host that fails ends the run with a SIM violation.
pub fn drive(
    targets: Targets<'_, '_>,
    schedule: Schedule<'_>,
    hosts: &[&String],
    mut after_step: impl FnMut(Duration),
) -> Option<Violation> {
    let Targets {
        sim,
        pauses,
        stop,
        db,
        trace,
    } = targets;
    let mut pending = schedule.faults.iter().peekable();
    let mut healed = false;
    let mut on_db = DbFaults::default();
    while sim.elapsed() < schedule.end_at {
        if !healed && sim.elapsed() >= schedule.heal_at {
            healed = true;
            heal(sim, pauses, hosts, trace);
        }
        while let Some((at, fault)) = pending.peek() {
            if *at > sim.elapsed() {
                break;
            }
            trace.record(*at, "faults", format!("{fault:?}"));
            if !on_db.apply(db, trace, sim.elapsed(), fault) {
                if *fault == Fault::CrashDb {
                    on_db.crashed(sim.elapsed());
                }
                apply(sim, pauses, stop, db, trace, fault);
            }
            pending.next();
        }
        if let Err(e) = sim.step() {
            return Some(Violation {
                invariant: "SIM",
                at: sim.elapsed(),
                detail: format!("a host failed: {e}"),
            });
        }
        after_step(sim.elapsed());
    }
    None
}

/// The end of the safety phase: whatever a fault left behind (a freeze the
/// database host was to end, a plan not carried out) ends here.
fn heal(sim: &mut turmoil::Sim<'_>, pauses: &Pauses, hosts: &[&String], trace: &Trace) {
    pauses.clear();
    for host in hosts {
        sim.repair(host.as_str(), "db");
        sim.release(host.as_str(), "db");
    }
    trace.record(sim.elapsed(), "faults", "healed".to_owned());
}

/// Applies one fault; `stop` asks a host to stop gracefully.
fn apply(
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
        // Acted out on the database (`DbFaults`).
        Fault::PauseReplay
        | Fault::ResumeReplay
        | Fault::Promote
        | Fault::OpenTransaction
        | Fault::CommitTransaction { .. } => {}
    }
}
