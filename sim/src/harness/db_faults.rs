//! The faults acted out on the model database rather than on the network
//! or a host: the standby's replay paused and resumed, its promotion after
//! the primary died, and a client's transaction held open on the primary.
//! They remember what spans two faults: when the primary died (the
//! standby keeps what it had replayed by then) and the held transaction.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::faults::Fault;
use crate::harness::trace::Trace;
use crate::model::db::ModelDb;
use crate::model::log::events::Outcome;

/// What the database faults of a run remember between faults.
#[derive(Debug, Default)]
pub struct DbFaults {
    /// When the database host last crashed.
    crashed_at: Option<Duration>,
    /// The transaction `OpenTransaction` holds open.
    held: Option<u64>,
}

impl DbFaults {
    /// Notes a crash of the database host at `now`.
    pub fn crashed(&mut self, now: Duration) {
        self.crashed_at = Some(now);
    }

    /// Acts out `fault` at `now` if it is one of the database's; false if
    /// it is not.
    pub fn apply(
        &mut self,
        db: &Arc<Mutex<ModelDb>>,
        trace: &Trace,
        now: Duration,
        fault: &Fault,
    ) -> bool {
        let mut db = db.lock().expect("db lock");
        let what = match fault {
            Fault::PauseReplay => {
                let Some(standby) = &mut db.standby else {
                    return true;
                };
                standby.pause(now);
                format!("standby replay paused, {} commits behind", standby.behind())
            }
            Fault::ResumeReplay => {
                let Some(standby) = &mut db.standby else {
                    return true;
                };
                standby.resume();
                format!(
                    "standby replay resumed, {} commits behind",
                    standby.behind()
                )
            }
            Fault::Promote => {
                let cut = self.crashed_at.unwrap_or(now);
                match db.promote_standby(cut) {
                    Some(p) => format!(
                        "promoted the standby to timeline {}: lost {} commits ({} events), next xid {} (was {})",
                        p.timeline, p.lost_commits, p.lost_events, p.next_xid.1, p.next_xid.0
                    ),
                    None => "no standby to promote".to_owned(),
                }
            }
            Fault::OpenTransaction => {
                let xid = db.log.events_mut().begin_work();
                self.held = Some(xid);
                format!("transaction {xid} opened and held (other work first)")
            }
            Fault::CommitTransaction { stream } => {
                let Some(xid) = self.held.take() else {
                    return true;
                };
                let appended = db.log.append_in_work(now, xid, *stream, 1);
                let commit = matches!(appended, Some(Outcome::Started { .. }));
                // Gone already when a restart or promotion ended it.
                let ended = db.log.end_append(now, xid, commit);
                db.replicate(now);
                format!(
                    "transaction {xid}: append to stream {stream} {appended:?}, {}",
                    match (ended, commit) {
                        (false, _) => "already ended",
                        (true, true) => "committed",
                        (true, false) => "rolled back",
                    }
                )
            }
            _ => return false,
        };
        if matches!(fault, Fault::OpenTransaction) {
            db.replicate(now);
        }
        trace.record(now, "db", what);
        true
    }
}
