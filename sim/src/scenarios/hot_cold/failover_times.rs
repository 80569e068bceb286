//! How long takeovers took, for the runner's summary: from a crash of the
//! active hot node (or the end of its lease session) to the next grant to
//! another node (to any node, after a session end); and from the return of
//! a restarted database, which ended every session, to the next grant.

use std::time::Duration;

use crate::harness::faults::Fault;
use crate::invariants::liveness::was_active;
use crate::invariants::session_takeover::SessionTakeover;
use crate::model::lease::records::{GrantRecord, WriteRecord};

/// Which kind of takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// The hot node crashed.
    Crash,
    /// The database ended the hot node's lease session.
    SessionEnded,
    /// The database restarted under an active hot node (measured from its
    /// return).
    DbRestart,
}

/// One takeover: its cause and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    /// What silenced the hot node.
    pub cause: Cause,
    /// From the fault to the grant.
    pub took: Duration,
    /// What LEASE-3 allowed it (see `SessionTakeover::deadline`), when
    /// leases were bound to sessions.
    pub allowed: Option<Duration>,
}

/// Every takeover after a crash or session end of the active hot node,
/// before `until`, that a grant followed while the fault lasted.
pub fn takeovers(
    faults: &[(Duration, Fault)],
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    until: Duration,
    sessions: Option<&SessionTakeover>,
) -> Vec<Takeover> {
    let mut out = Vec::new();
    for (i, (at, fault)) in faults.iter().enumerate() {
        let (node, cause) = match fault {
            Fault::Crash(n) => (n, Cause::Crash),
            Fault::EndSession(n) => (n, Cause::SessionEnded),
            Fault::CrashDb => {
                out.extend(after_db_restart(faults, i, grants, writes, until));
                continue;
            }
            _ => continue,
        };
        if *at >= until || !was_active(faults, i, node, *at, grants, writes) {
            continue;
        }
        // A crash lasts until the restart; a session end until the next fault.
        let lasts = faults[i + 1..]
            .iter()
            .find(|(_, f)| cause == Cause::SessionEnded || *f == Fault::Restart(node.clone()))
            .map_or(until, |(t, _)| (*t).min(until));
        let next = grants.iter().find(|g| {
            g.at > *at && g.at <= lasts && (cause == Cause::SessionEnded || g.node != *node)
        });
        if let Some(g) = next {
            let allowed = sessions
                .and_then(|s| s.deadline(faults, i, node, grants))
                .map(|d| d - *at);
            out.push(Takeover {
                cause,
                took: g.at - *at,
                allowed,
            });
        }
    }
    out
}

/// The first grant after the database restarted by `faults[i]` came back,
/// if the hot node was active when it went down.
fn after_db_restart(
    faults: &[(Duration, Fault)],
    i: usize,
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    until: Duration,
) -> Option<Takeover> {
    let at = faults[i].0;
    let leader = grants.iter().rev().find(|g| g.at <= at)?;
    if !was_active(faults, i, &leader.node, at, grants, writes) {
        return None;
    }
    let (back, _) = faults[i + 1..]
        .iter()
        .find(|(_, f)| *f == Fault::RestartDb)?;
    let next = grants.iter().find(|g| g.at > *back && g.at < until)?;
    Some(Takeover {
        cause: Cause::DbRestart,
        took: next.at - *back,
        allowed: None,
    })
}
