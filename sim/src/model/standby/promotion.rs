//! A lossy promotion: the primary dies and its asynchronous standby
//! becomes the primary with what it had replayed. Every later commit is
//! gone, lease rows, checkpoint and read model with the events, since they
//! live in the one database and roll back together; transaction ids and
//! positions after the replayed point are handed out again; the new
//! server runs on the next WAL timeline, whose lease epochs start above
//! the last timeline's (`rf_epoch_floor()`, sql/0020). The checks' records
//! (grants, writes, violations, the store's history) describe what
//! happened on either server and stay.
//!
//! Partition ownership and lease sessions are not replicated here: the
//! promotion runs inside a database outage, which ends every session, and
//! the scenarios that promote run no partitioned projection.

use std::time::Duration;

use super::replica::Standby;
use crate::model::db::ModelDb;

/// What a promotion did, for the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// Commits of the old primary the standby never replayed.
    pub lost_commits: usize,
    /// Events the old primary had committed that are gone.
    pub lost_events: usize,
    /// The next transaction id on the old primary and on the new one (ids
    /// in between are handed out again).
    pub next_xid: (u64, u64),
    /// The new timeline.
    pub timeline: u64,
}

impl ModelDb {
    /// Promotes the standby with what it had replayed when the primary
    /// died at `cut`; a new standby of the promoted server (the old primary
    /// rebuilt, `pg_rewind`) replays from there. None without a standby.
    pub fn promote_standby(&mut self, cut: Duration) -> Option<Promotion> {
        let standby = self.standby.as_mut()?;
        let (replayed, lost_commits) = standby.cut(cut);
        let before = (self.log.committed(), self.log.events().next_xid());
        self.lease.promote(&replayed.lease);
        self.log.promote(&replayed.log);
        // The old primary's open transactions died with its connections.
        self.log.abort_open();
        let promotion = Promotion {
            lost_commits,
            lost_events: before.0 - self.log.committed(),
            next_xid: (before.1, self.log.events().next_xid()),
            timeline: self.lease.timeline,
        };
        let mut fresh = Standby::new(standby.lag().clone(), cut, &self.lease, &self.log);
        fresh.in_progress_list = standby.in_progress_list;
        self.standby = Some(fresh);
        Some(promotion)
    }
}
