//! The event log, one projection's checkpoint and its read model, as the
//! database holds them, for PROJ-1 and PROJ-2 under faults.
//!
//! Appends take a transaction id and positions when they start and become
//! visible when they commit, so commits land out of position order. A
//! batch reads, as `EventStore::read_all_in` does, every tier (with archived
//! data, so an event that moved cold is still read, once) in (xid,
//! position) order and only below the horizon (the oldest open append's
//! xid), applies the events to a per-stream counter and moves the
//! checkpoint, all in one atomic step: in Postgres the batch is one
//! transaction holding its checkpoint row and the cluster row's share lock,
//! so nothing interleaves with it that could change its outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_core::archive::read_plan;
use rillflow_core::ExpectedVersion;

use crate::model::log::events::{AppendRequest, ModelEvents, Outcome};

/// One event in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogEvent {
    /// Transaction id of its append.
    pub xid: u64,
    /// Position (taken at the append's start).
    pub position: u64,
    /// Stream.
    pub stream: u32,
    /// Version in the stream.
    pub version: u64,
}

impl LogEvent {
    /// Its place in the global feed.
    pub fn cursor(&self) -> (u64, u64) {
        (self.xid, self.position)
    }
}

/// A broken projection invariant, seen when a batch committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogViolation {
    /// PROJ-1, PROJ-2 or PROJ-3.
    pub invariant: &'static str,
    /// Database time.
    pub at: Duration,
    /// What happened.
    pub detail: String,
}

/// The log and the projection's state.
#[derive(Debug, Clone, Default)]
pub struct ModelLog {
    events: ModelEvents,
    checkpoint: (u64, u64),
    /// Per stream: events applied and the last version applied.
    read_model: BTreeMap<u32, (u64, u64)>,
    /// Per event: how often a committed batch applied it.
    applied: BTreeMap<(u64, u64), u32>,
    /// Broken invariants, in order.
    pub violations: Vec<LogViolation>,
    /// Batches that applied something.
    pub batches: usize,
    /// Off only in the test that shows the checks catch a reader that
    /// ignores the horizon.
    pub horizon_disabled: bool,
    /// Raised by every change (every `&mut` method): a standby copies the
    /// log only when it changed since its last copy.
    generation: u64,
}

impl ModelLog {
    /// An empty log whose store runs on `events`' backend.
    pub fn new(events: ModelEvents) -> Self {
        ModelLog {
            events,
            checkpoint: (0, 0),
            read_model: BTreeMap::new(),
            applied: BTreeMap::new(),
            violations: Vec::new(),
            batches: 0,
            horizon_disabled: false,
            generation: 0,
        }
    }

    /// How many times the log may have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The log, its checkpoint and read model without the checks' records,
    /// as a standby replays them.
    pub fn without_records(&self) -> ModelLog {
        ModelLog {
            events: self.events.without_records(),
            checkpoint: self.checkpoint,
            read_model: self.read_model.clone(),
            applied: self.applied.clone(),
            violations: Vec::new(),
            batches: 0,
            horizon_disabled: self.horizon_disabled,
            generation: self.generation,
        }
    }

    /// Becomes `replica`'s state (a promoted standby's): events,
    /// checkpoint and read model roll back together, as they do in the one
    /// database; the records of what this server saw stay.
    pub fn promote(&mut self, replica: &ModelLog) {
        self.events.promote(&replica.events);
        self.checkpoint = replica.checkpoint;
        self.read_model = replica.read_model.clone();
        self.applied = replica.applied.clone();
        self.generation += 1;
    }

    /// The checkpoint: the cursor of the last event applied.
    pub fn checkpoint(&self) -> (u64, u64) {
        self.checkpoint
    }

    /// Up to `limit` committed events after `after` in cursor order, all
    /// below `horizon` (a standby's read, where `self` is its copy).
    pub fn read_after(&self, after: (u64, u64), horizon: u64, limit: usize) -> Vec<LogEvent> {
        self.events
            .rows()
            .feed_after(after, read_plan(true))
            .iter()
            .map(|r| r.event)
            .take_while(|e| e.xid < horizon)
            .take(limit)
            .collect()
    }

    /// Starts an append of `n` events to `stream` at `now`, expecting
    /// nothing; None while another append to it is open (it holds the
    /// stream's head row).
    pub fn begin_append(&mut self, now: Duration, stream: u32, n: u32) -> Option<u64> {
        self.generation += 1;
        let request = AppendRequest {
            stream,
            expected: ExpectedVersion::Any,
            key: None,
            payloads: vec![0; n.max(1) as usize],
        };
        match self.events.begin(now, &request) {
            Outcome::Started { xid, .. } => Some(xid),
            _ => None,
        }
    }

    /// Appends `n` events to `stream` inside the working transaction `xid`
    /// (see [`ModelEvents::append_in_work`]).
    pub fn append_in_work(
        &mut self,
        now: Duration,
        xid: u64,
        stream: u32,
        n: u32,
    ) -> Option<Outcome> {
        self.generation += 1;
        let request = AppendRequest {
            stream,
            expected: ExpectedVersion::Any,
            key: None,
            payloads: vec![0; n.max(1) as usize],
        };
        self.events.append_in_work(now, xid, &request)
    }

    /// Commits or rolls back an open append; false when it is unknown
    /// (ended already, or lost to a database restart).
    pub fn end_append(&mut self, now: Duration, xid: u64, commit: bool) -> bool {
        self.generation += 1;
        let Some(events) = self.events.end(now, xid, commit) else {
            return false;
        };
        // PROJ-2 at its source: a commit that lands at or behind the
        // checkpoint will never be read.
        if let Some(behind) = events.iter().find(|e| e.cursor() <= self.checkpoint) {
            self.violations.push(LogViolation {
                invariant: "PROJ-2",
                at: now,
                detail: format!(
                    "{behind:?} committed behind checkpoint {:?}: the reader passed an open append",
                    self.checkpoint
                ),
            });
        }
        true
    }

    /// A database restart ends every open transaction.
    pub fn abort_open(&mut self) {
        self.generation += 1;
        self.events.abort_open();
    }

    /// No transaction at or above this id has finished with certainty, or
    /// may still append (`rf_read_horizon`, sql/0016).
    fn horizon(&self) -> u64 {
        if self.horizon_disabled {
            return u64::MAX;
        }
        self.events.horizon()
    }

    /// Runs one batch of up to `limit` events at database time `now`;
    /// returns how many it applied.
    pub fn project(&mut self, now: Duration, limit: usize) -> usize {
        let horizon = self.horizon();
        // In cursor order every event below the horizon comes first.
        let batch = self.read_after(self.checkpoint, horizon, limit);
        self.events.raise_floor();
        self.apply_batch(now, &batch)
    }

    /// Applies `batch`, read after the checkpoint (here or on a standby),
    /// and moves the checkpoint to its last event, in one step as the
    /// batch's transaction commits; returns how many it applied.
    pub fn apply_batch(&mut self, now: Duration, batch: &[LogEvent]) -> usize {
        self.generation += 1;
        for e in batch {
            let (count, last) = self.read_model.entry(e.stream).or_insert((0, 0));
            if e.version != *last + 1 {
                self.violations.push(LogViolation {
                    invariant: "PROJ-3",
                    at: now,
                    detail: format!(
                        "stream {} got version {} after version {}",
                        e.stream, e.version, last
                    ),
                });
            }
            *count += 1;
            *last = e.version;
            let times = self.applied.entry(e.cursor()).or_insert(0);
            *times += 1;
            if *times > 1 {
                self.violations.push(LogViolation {
                    invariant: "PROJ-1",
                    at: now,
                    detail: format!("event {:?} applied {} times", e, times),
                });
            }
        }
        if let Some(last) = batch.last() {
            let passed = self.checkpoint;
            self.checkpoint = last.cursor();
            self.batches += 1;
            // PROJ-2: nothing committed at or before the checkpoint may be
            // left unapplied, or no later batch would ever read it. What lay
            // behind the old checkpoint was checked then, and a commit
            // landing behind it is caught when it commits.
            if let Some(missed) = self
                .events
                .rows()
                .between(passed, self.checkpoint)
                .find(|r| !self.applied.contains_key(&r.event.cursor()))
            {
                self.violations.push(LogViolation {
                    invariant: "PROJ-2",
                    at: now,
                    detail: format!(
                        "checkpoint {:?} passed {:?}, which was not applied",
                        self.checkpoint, missed.event
                    ),
                });
            }
        }
        batch.len()
    }

    /// Committed events (stored rows, both tiers).
    pub fn committed(&self) -> usize {
        self.events.rows().len()
    }

    /// Committed events no batch has applied yet.
    pub fn unapplied(&self) -> usize {
        self.events
            .rows()
            .all()
            .filter(|(_, r)| !self.applied.contains_key(&r.event.cursor()))
            .count()
    }

    /// Events the read model holds that are not in the log: effects of
    /// events a promotion lost, which must have rolled back with them.
    pub fn stray(&self) -> usize {
        let stored: std::collections::BTreeSet<(u64, u64)> = self
            .events
            .rows()
            .all()
            .map(|(_, r)| r.event.cursor())
            .collect();
        self.applied.keys().filter(|c| !stored.contains(c)).count()
    }

    /// The read model: per stream, events applied and the last version.
    pub fn read_model(&self) -> &BTreeMap<u32, (u64, u64)> {
        &self.read_model
    }

    /// The event store the log reads.
    pub fn events(&self) -> &ModelEvents {
        &self.events
    }

    /// The event store, to append to and archive.
    pub fn events_mut(&mut self) -> &mut ModelEvents {
        self.generation += 1;
        &mut self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_commit_below_the_horizon_is_not_passed() {
        let mut log = ModelLog::default();
        let slow = log.begin_append(Duration::ZERO, 1, 1).unwrap();
        let fast = log.begin_append(Duration::ZERO, 2, 2).unwrap();
        assert!(log.end_append(Duration::ZERO, fast, true));
        // The slow append is open: its xid is the horizon; nothing reads.
        assert_eq!(log.project(Duration::ZERO, 10), 0);
        assert!(log.end_append(Duration::ZERO, slow, true));
        assert_eq!(log.project(Duration::ZERO, 10), 3);
        assert!(log.violations.is_empty());
        assert_eq!(log.unapplied(), 0);
    }

    #[test]
    fn without_the_horizon_the_late_commit_is_caught() {
        let mut log = ModelLog {
            horizon_disabled: true,
            ..ModelLog::default()
        };
        let slow = log.begin_append(Duration::ZERO, 1, 1).unwrap();
        let fast = log.begin_append(Duration::ZERO, 2, 1).unwrap();
        log.end_append(Duration::ZERO, fast, true);
        assert_eq!(log.project(Duration::ZERO, 10), 1);
        log.end_append(Duration::ZERO, slow, true);
        log.project(Duration::ZERO, 10);
        assert_eq!(
            log.unapplied(),
            1,
            "the slow event is behind the checkpoint"
        );
        assert_eq!(log.violations[0].invariant, "PROJ-2");
    }

    #[test]
    fn a_transaction_that_works_first_is_passed_and_then_refused() {
        let mut log = ModelLog::default();
        let work = log.events_mut().begin_work();
        let fast = log.begin_append(Duration::ZERO, 2, 1).unwrap();
        assert!(log.end_append(Duration::ZERO, fast, true));
        // The first read stops in front of it and raises the floor.
        assert_eq!(log.project(Duration::ZERO, 10), 0);
        assert_eq!(log.project(Duration::ZERO, 10), 1);
        assert_eq!(
            log.append_in_work(Duration::ZERO, work, 1, 1),
            Some(Outcome::Passed)
        );
        assert!(log.end_append(Duration::ZERO, work, false));
        assert!(log.violations.is_empty());
    }

    #[test]
    fn without_the_floor_check_the_passed_append_is_caught() {
        let mut log = ModelLog::default();
        log.events_mut().floor_check_disabled = true;
        let work = log.events_mut().begin_work();
        let fast = log.begin_append(Duration::ZERO, 2, 1).unwrap();
        log.end_append(Duration::ZERO, fast, true);
        log.project(Duration::ZERO, 10);
        log.project(Duration::ZERO, 10);
        assert!(matches!(
            log.append_in_work(Duration::ZERO, work, 1, 1),
            Some(Outcome::Started { .. })
        ));
        log.end_append(Duration::ZERO, work, true);
        assert_eq!(log.violations[0].invariant, "PROJ-2");
    }

    #[test]
    fn a_stream_has_one_open_append_and_a_restart_ends_them() {
        let mut log = ModelLog::default();
        let a = log.begin_append(Duration::ZERO, 1, 1).unwrap();
        assert_eq!(log.begin_append(Duration::ZERO, 1, 1), None);
        log.abort_open();
        assert!(!log.end_append(Duration::ZERO, a, true));
        assert_eq!(log.committed(), 0);
        assert!(log.begin_append(Duration::ZERO, 1, 1).is_some());
    }
}
