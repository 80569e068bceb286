//! A hot standby of the model database: it applies the primary's commits
//! in commit order, each once its replay lag has passed, and can be paused
//! (`pg_wal_replay_pause()`). Projections read the log from it through the
//! horizon a real standby gives: its own snapshot's xmin, so every
//! transaction still open on the primary as of the replayed commit holds
//! it back, whether or not it registered as an appender (sql/0016:
//! `rf_read_horizon()` in recovery keeps to xmin; a standby's snapshot
//! cannot say who registered).
//!
//! The primary's state after each request it applied is kept, as the WAL
//! would carry it, until the standby has replayed past it. Only the rows a
//! promotion keeps are copied (the lease rows, the log with its checkpoint
//! and read model), not the checks' records, and the log only when it
//! changed: the copies are what a run's memory goes to.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::replay_lag::ReplayLag;
use crate::model::lease::leases::ModelLeases;
use crate::model::log::event_log::{LogEvent, ModelLog};

/// The primary's state after one of its commits.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Database time of the commit.
    pub committed_at: Duration,
    /// The lease rows.
    pub lease: ModelLeases,
    /// The log, its checkpoint and read model.
    pub log: Arc<ModelLog>,
}

/// The standby.
#[derive(Debug, Clone)]
pub struct Standby {
    lag: ReplayLag,
    /// Commits not replayed yet, oldest first, each with the time it can
    /// be: its commit time plus its lag, never before the one before it.
    pending: VecDeque<(Duration, Replayed)>,
    replayed: Replayed,
    paused: bool,
    /// Off only to show the checks catch it: read every committed row the
    /// snapshot holds, passing transactions that were open on the primary
    /// (an in-progress list the standby does not have).
    pub in_progress_list: bool,
}

impl Standby {
    /// A standby that has replayed everything up to the primary's state
    /// (`lease`, `log`) at `now`.
    pub fn new(lag: ReplayLag, now: Duration, lease: &ModelLeases, log: &ModelLog) -> Standby {
        Standby {
            lag,
            pending: VecDeque::new(),
            replayed: Replayed {
                committed_at: now,
                lease: lease.rows_only(),
                log: Arc::new(log.without_records()),
            },
            paused: false,
            in_progress_list: false,
        }
    }

    /// The primary applied a request at `now`, leaving `lease` and `log`.
    pub fn record(&mut self, now: Duration, lease: &ModelLeases, log: &ModelLog) {
        let newest = self.pending.back().map_or(&self.replayed, |(_, r)| r);
        let log = if newest.log.generation() == log.generation() {
            newest.log.clone()
        } else {
            Arc::new(log.without_records())
        };
        let ready = self
            .pending
            .back()
            .map_or(Duration::ZERO, |(ready, _)| *ready)
            .max(now + self.lag.at(now));
        self.pending.push_back((
            ready,
            Replayed {
                committed_at: now,
                lease: lease.rows_only(),
                log,
            },
        ));
    }

    /// Replays every commit whose lag has passed by `now`, unless paused.
    pub fn catch_up(&mut self, now: Duration) {
        if self.paused {
            return;
        }
        while self.pending.front().is_some_and(|(ready, _)| *ready <= now) {
            let (_, next) = self.pending.pop_front().expect("a front commit");
            self.replayed = next;
        }
    }

    /// Pauses replay at `now` (what was due by then is replayed first).
    pub fn pause(&mut self, now: Duration) {
        self.catch_up(now);
        self.paused = true;
    }

    /// Resumes replay; commits due meanwhile replay at the next look.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// The horizon of a read on the standby now.
    pub fn horizon(&self) -> u64 {
        let events = self.replayed.log.events();
        if self.in_progress_list {
            events.next_xid()
        } else {
            events.xmin()
        }
    }

    /// Up to `limit` events after `after` (the checkpoint the batch holds
    /// on the primary), below the standby's horizon, as of `now`.
    pub fn read(&mut self, now: Duration, after: (u64, u64), limit: usize) -> Vec<LogEvent> {
        self.catch_up(now);
        let horizon = self.horizon();
        self.replayed.log.read_after(after, horizon, limit)
    }

    /// What the standby had replayed when the primary died at `cut`, and
    /// how many of the primary's commits it never got: the state a
    /// promotion starts from.
    pub fn cut(&mut self, cut: Duration) -> (Replayed, usize) {
        self.catch_up(cut);
        (self.replayed.clone(), self.pending.len())
    }

    /// Its lag.
    pub fn lag(&self) -> &ReplayLag {
        &self.lag
    }

    /// What it has replayed.
    pub fn replayed(&self) -> &Replayed {
        &self.replayed
    }

    /// Commits it has not replayed yet.
    pub fn behind(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn commits_replay_in_order_after_their_lag_and_not_while_paused() {
        let mut log = ModelLog::default();
        let lease = ModelLeases::default();
        let mut standby = Standby::new(ReplayLag::constant(ms(100)), ms(0), &lease, &log);
        let xid = log.begin_append(ms(0), 1, 2).unwrap();
        log.end_append(ms(0), xid, true);
        standby.record(ms(0), &lease, &log);
        assert!(
            standby.read(ms(50), (0, 0), 10).is_empty(),
            "not replayed yet"
        );
        assert_eq!(standby.read(ms(100), (0, 0), 10).len(), 2);
        standby.pause(ms(100));
        let xid = log.begin_append(ms(110), 2, 1).unwrap();
        log.end_append(ms(110), xid, true);
        standby.record(ms(110), &lease, &log);
        assert_eq!(standby.read(ms(900), (0, 0), 10).len(), 2, "paused");
        standby.resume();
        assert_eq!(standby.read(ms(900), (0, 0), 10).len(), 3);
    }

    #[test]
    fn a_transaction_open_on_the_primary_holds_the_standby_back() {
        let mut log = ModelLog::default();
        let lease = ModelLeases::default();
        let mut standby = Standby::new(ReplayLag::constant(ms(0)), ms(0), &lease, &log);
        // Open without registering (other work first), then a later append
        // commits: the primary would pass the first once its floor covers
        // it; the standby keeps to its xmin.
        let work = log.events_mut().begin_work();
        let xid = log.begin_append(ms(0), 2, 1).unwrap();
        log.end_append(ms(0), xid, true);
        standby.record(ms(0), &lease, &log);
        assert!(standby.read(ms(1), (0, 0), 10).is_empty());
        standby.in_progress_list = true;
        assert_eq!(standby.read(ms(1), (0, 0), 10).len(), 1, "passes it");
        standby.in_progress_list = false;
        log.end_append(ms(2), work, true);
        standby.record(ms(2), &lease, &log);
        assert_eq!(standby.read(ms(3), (0, 0), 10).len(), 1);
    }
}
