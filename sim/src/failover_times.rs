//! How long takeovers took, for the runner's summary: from a crash of the
//! active hot node (or the end of its lease session) to the next grant to
//! another node (to any node, after a session end).

use std::time::Duration;

use crate::faults::Fault;
use crate::invariants::liveness::was_active;
use crate::model_db::{GrantRecord, WriteRecord};

/// Which kind of takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// The hot node crashed.
    Crash,
    /// The database ended the hot node's lease session.
    SessionEnded,
}

/// One takeover: its cause and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    /// What silenced the hot node.
    pub cause: Cause,
    /// From the fault to the grant.
    pub took: Duration,
}

/// Every takeover after a crash or session end of the active hot node,
/// before `until`, that a grant followed while the fault lasted.
pub fn takeovers(
    faults: &[(Duration, Fault)],
    grants: &[GrantRecord],
    writes: &[WriteRecord],
    until: Duration,
) -> Vec<Takeover> {
    let mut out = Vec::new();
    for (i, (at, fault)) in faults.iter().enumerate() {
        let (node, cause) = match fault {
            Fault::Crash(n) => (n, Cause::Crash),
            Fault::EndSession(n) => (n, Cause::SessionEnded),
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
            out.push(Takeover {
                cause,
                took: g.at - *at,
            });
        }
    }
    out
}
