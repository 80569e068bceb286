//! The event store as the database holds it: stream heads, committed rows
//! in their tiers, appends still open, and the archive operations, each
//! applied atomically at a database time.
//!
//! It mirrors `rf_append` and the archive statements: an append locks its
//! stream's head first and holds it until it ends, checks the idempotency
//! key and then the expected version against the head, and routes its rows
//! by `append_target` for the head's state. Mark, reactivate and a move
//! batch update heads, so they wait for an open append on the same stream;
//! switching the redirect alters the table, so it waits for every open
//! append. A waiting request is answered [`Busy`](Outcome::Busy) and the
//! database host asks again until its lock timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rillflow_core::archive::{append_target, read_plan, AppendTarget, Backend, HeadFlags};
use rillflow_core::ExpectedVersion;

use crate::model::log::event_log::LogEvent;
use crate::model::log::history::{History, Step};
use crate::model::log::move_scope::{pick, Batch, MoveScope};
use crate::model::log::stream_heads::{Heads, KeyMatch};
use crate::model::log::tiers::{Cursor, Row, Tier, Tiers};

/// An append as `rf_append` receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    /// Stream.
    pub stream: u32,
    /// What the writer expects of the head.
    pub expected: ExpectedVersion,
    /// Idempotency key.
    pub key: Option<u64>,
    /// One payload per event (at least one).
    pub payloads: Vec<u64>,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An append is open, holding its stream's head.
    Started {
        /// Its transaction id.
        xid: u64,
        /// First version it writes.
        first: u64,
        /// Last version it writes.
        last: u64,
    },
    /// The key was used before: its first result, nothing written.
    Replayed {
        /// First version.
        first: u64,
        /// Last version.
        last: u64,
    },
    /// The idempotency key stands for another request (other events, or
    /// another stream): nothing written.
    KeyReused,
    /// The expected version did not hold against the head.
    Conflict {
        /// The head's version.
        actual: u64,
    },
    /// A lock it needs is held by an open append.
    Busy,
    /// The transaction took its id before registering as an appender and
    /// readers have passed it since (`RF007`): nothing written.
    Passed,
    /// The stream's last append committed under a newer transaction id
    /// than this transaction's (`RF003`): nothing written.
    Stale,
    /// Done; `changed` is false when there was nothing to do.
    Done {
        /// Whether anything changed.
        changed: bool,
    },
    /// The stream has no head.
    NoStream,
    /// Where a mover's pass starts.
    Planned {
        /// Its cutoff: rows created before this database time.
        before: Duration,
        /// The last position given out.
        upto: u64,
    },
    /// A move batch (or its delete half) committed.
    Moved(Batch),
    /// The copy half of a two-step move committed.
    Copied(Batch),
}

#[derive(Debug, Clone)]
struct OpenAppend {
    rows: Vec<Row>,
    key: Option<u64>,
    target: AppendTarget,
}

/// A broken conservation rule, seen right after the step that broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreViolation {
    /// Database time.
    pub at: Duration,
    /// What is wrong.
    pub detail: String,
}

/// Heads, tiers, open appends and the archive settings.
#[derive(Debug, Clone)]
pub struct ModelEvents {
    next_xid: u64,
    next_position: u64,
    open: BTreeMap<u64, OpenAppend>,
    /// Open transactions that took an id without registering as appenders
    /// (they wrote other tables first, sql/0016).
    working: BTreeSet<u64>,
    /// The read floor: readers pass a working transaction only once it is
    /// below it, and such a transaction may no longer append.
    floor: u64,
    /// Off only in the test that shows the checks catch an append readers
    /// have passed.
    pub floor_check_disabled: bool,
    /// Per stream, the transaction id of its last committed append.
    last_writer: BTreeMap<u32, u64>,
    busy: BTreeSet<u32>,
    heads: Heads,
    rows: Tiers,
    backend: Backend,
    redirect: bool,
    history: History,
    /// Streams whose stored rows stopped being exactly their versions
    /// 1..=head, checked after every step that touched them.
    pub violations: Vec<StoreViolation>,
}

impl Default for ModelEvents {
    fn default() -> Self {
        ModelEvents::new(Backend::DualTable)
    }
}

impl ModelEvents {
    /// An empty store on `backend`, redirect off (as migrations leave it).
    pub fn new(backend: Backend) -> Self {
        ModelEvents {
            next_xid: 0,
            next_position: 0,
            open: BTreeMap::new(),
            working: BTreeSet::new(),
            floor: 0,
            floor_check_disabled: false,
            last_writer: BTreeMap::new(),
            busy: BTreeSet::new(),
            heads: Heads::default(),
            rows: Tiers::default(),
            backend,
            redirect: false,
            history: History::default(),
            violations: Vec::new(),
        }
    }

    /// Starts an append at `now` (`rf_append` up to its return; the rows
    /// become visible when [`end`](Self::end) commits them).
    pub fn begin(&mut self, now: Duration, request: &AppendRequest) -> Outcome {
        self.begin_in(now, request, None)
    }

    /// Opens a transaction that writes other tables first: it takes an id
    /// now and has not registered as an appender.
    pub fn begin_work(&mut self) -> u64 {
        self.next_xid += 1;
        self.working.insert(self.next_xid);
        self.next_xid
    }

    /// Appends inside the working transaction `xid` (which registers it);
    /// None when no such transaction is open, [`Outcome::Passed`] when it is
    /// below the read floor.
    pub fn append_in_work(
        &mut self,
        now: Duration,
        xid: u64,
        request: &AppendRequest,
    ) -> Option<Outcome> {
        if !self.working.contains(&xid) {
            return None;
        }
        if xid < self.floor && !self.floor_check_disabled {
            return Some(Outcome::Passed);
        }
        // Only a working transaction can be older than a stream's last
        // writer: an append takes its id at the head.
        if self
            .last_writer
            .get(&request.stream)
            .is_some_and(|w| *w > xid)
            && !self.busy.contains(&request.stream)
        {
            return Some(Outcome::Stale);
        }
        let outcome = self.begin_in(now, request, Some(xid));
        if matches!(outcome, Outcome::Started { .. }) {
            self.working.remove(&xid);
        }
        Some(outcome)
    }

    /// Open transactions that have not registered as appenders.
    pub fn working(&self) -> impl Iterator<Item = u64> + '_ {
        self.working.iter().copied()
    }

    fn begin_in(&mut self, now: Duration, request: &AppendRequest, xid: Option<u64>) -> Outcome {
        let stream = request.stream;
        if self.busy.contains(&stream) {
            return Outcome::Busy;
        }
        let current = self.heads.version(stream);
        // Keys first, as `rf_append` checks them: a retry of a committed
        // append gets its result even if the stream has moved on since.
        let matched = request.key.map_or(KeyMatch::New, |k| {
            self.heads.replay(stream, k, &request.payloads)
        });
        match matched {
            KeyMatch::New => {}
            KeyMatch::Reused => return Outcome::KeyReused,
            KeyMatch::Retry { first, last } => {
                let key = request.key.expect("a replay has a key");
                self.history.push(
                    now,
                    Step::Replayed {
                        stream,
                        key,
                        first,
                        last,
                    },
                );
                return Outcome::Replayed { first, last };
            }
        }
        if request.expected.check(current).is_err() {
            self.history.push(
                now,
                Step::Conflict {
                    stream,
                    expected: request.expected,
                    actual: current,
                },
            );
            return Outcome::Conflict { actual: current };
        }
        self.busy.insert(stream);
        let xid = xid.unwrap_or_else(|| {
            self.next_xid += 1;
            self.next_xid
        });
        let target = append_target(self.backend, self.redirect, self.heads.state(stream));
        let payloads = if request.payloads.is_empty() {
            vec![0]
        } else {
            request.payloads.clone()
        };
        let rows: Vec<Row> = payloads
            .iter()
            .zip(current + 1..)
            .map(|(payload, version)| {
                self.next_position += 1;
                Row {
                    event: LogEvent {
                        xid,
                        position: self.next_position,
                        stream,
                        version,
                    },
                    payload: *payload,
                    created_at: now,
                }
            })
            .collect();
        let last = current + rows.len() as u64;
        self.open.insert(
            xid,
            OpenAppend {
                rows,
                key: request.key,
                target,
            },
        );
        Outcome::Started {
            xid,
            first: current + 1,
            last,
        }
    }

    /// Commits or rolls back an open append; None when it is unknown (ended
    /// already, or lost to a database restart), else the events committed.
    pub fn end(&mut self, now: Duration, xid: u64, commit: bool) -> Option<Vec<LogEvent>> {
        if self.working.remove(&xid) {
            return Some(Vec::new());
        }
        let open = self.open.remove(&xid)?;
        let stream = open.rows[0].event.stream;
        self.busy.remove(&stream);
        if !commit {
            return Some(Vec::new());
        }
        let first = open.rows[0].event.version;
        let last = open.rows[open.rows.len() - 1].event.version;
        for row in &open.rows {
            self.rows.insert(Tier::of(open.target), *row);
        }
        let payloads: Vec<u64> = open.rows.iter().map(|r| r.payload).collect();
        self.heads
            .commit(stream, (first, last), open.key, &payloads);
        self.last_writer.insert(stream, xid);
        self.history.push(
            now,
            Step::Committed {
                stream,
                first,
                last,
                key: open.key,
                target: open.target,
                cursors: open.rows.iter().map(|r| r.event.cursor()).collect(),
            },
        );
        self.check_streams(now, [stream]);
        Some(open.rows.iter().map(|r| r.event).collect())
    }

    /// A database restart ends every open transaction.
    pub fn abort_open(&mut self) {
        let open: Vec<u64> = self.open.keys().copied().collect();
        for xid in open {
            self.end(Duration::ZERO, xid, false);
        }
        self.working.clear();
    }

    /// The oldest open append's transaction id, else the next one to be
    /// given out (no transaction at or above it has finished for sure), or
    /// a working transaction below it that the floor does not cover yet.
    pub fn horizon(&self) -> u64 {
        let counted = self.counted();
        // A working transaction still at or above the floor may append.
        // (Below the floor only with the floor check off.)
        let guarded = (self.floor < counted)
            .then(|| self.working.range(self.floor..counted).next().copied())
            .flatten();
        guarded.map_or(counted, |g| g.min(counted))
    }

    /// What a reader that passed working transactions raises the floor to
    /// once it has read (`rf_read_horizon`, sql/0016): the horizon without
    /// them.
    pub fn raise_floor(&mut self) {
        let counted = self.counted();
        if self.working.range(..counted).next().is_some() {
            self.floor = self.floor.max(counted);
        }
    }

    /// A hot standby's horizon as of this state (`rf_read_horizon()` in
    /// recovery): its snapshot's xmin, the oldest transaction still open
    /// here, registered appender or not; the next id when none is. A
    /// standby cannot see who registered, so it never passes anyone.
    pub fn xmin(&self) -> u64 {
        let oldest_working = self.working.iter().next().copied();
        oldest_working.map_or(self.counted(), |w| w.min(self.counted()))
    }

    /// The next transaction id this server will hand out.
    pub fn next_xid(&self) -> u64 {
        self.next_xid + 1
    }

    /// This store without the checks' records (the history, violations),
    /// as a standby replays it.
    pub fn without_records(&self) -> ModelEvents {
        ModelEvents {
            next_xid: self.next_xid,
            next_position: self.next_position,
            open: self.open.clone(),
            working: self.working.clone(),
            floor: self.floor,
            floor_check_disabled: self.floor_check_disabled,
            last_writer: self.last_writer.clone(),
            busy: self.busy.clone(),
            heads: self.heads.clone(),
            rows: self.rows.clone(),
            backend: self.backend,
            redirect: self.redirect,
            history: History::default(),
            violations: Vec::new(),
        }
    }

    /// Becomes `replica`'s state (a promoted standby's), keeping the
    /// records of what this server decided.
    pub fn promote(&mut self, replica: &ModelEvents) {
        let history = std::mem::take(&mut self.history);
        let violations = std::mem::take(&mut self.violations);
        let floor_check_disabled = self.floor_check_disabled;
        *self = replica.without_records();
        self.history = history;
        self.violations = violations;
        self.floor_check_disabled = floor_check_disabled;
    }

    fn counted(&self) -> u64 {
        self.open
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_xid + 1)
    }

    /// `archive mark`.
    pub fn mark(&mut self, now: Duration, stream: u32) -> Outcome {
        self.update_head(now, stream, HeadFlags::mark, Step::Marked(stream))
    }

    /// `archive reactivate`.
    pub fn reactivate(&mut self, now: Duration, stream: u32) -> Outcome {
        self.update_head(
            now,
            stream,
            HeadFlags::reactivate,
            Step::Reactivated(stream),
        )
    }

    fn update_head(
        &mut self,
        now: Duration,
        stream: u32,
        f: fn(HeadFlags) -> HeadFlags,
        step: Step,
    ) -> Outcome {
        if self.busy.contains(&stream) {
            return Outcome::Busy;
        }
        match self.heads.update(stream, f) {
            None => Outcome::NoStream,
            Some(changed) => {
                if changed {
                    self.history.push(now, step);
                }
                Outcome::Done { changed }
            }
        }
    }

    /// `archive redirect --enable on`: an operator's switch.
    pub fn set_redirect(&mut self, now: Duration, on: bool) -> Outcome {
        if !self.open.is_empty() {
            return Outcome::Busy;
        }
        let changed = self.redirect != on;
        if changed {
            self.redirect = on;
            self.history.push(now, Step::Redirect(on));
        }
        Outcome::Done { changed }
    }

    /// Where a mover's pass starts at `now`: its cutoff, and the last
    /// position given out (appends after it are left for the next pass).
    pub fn move_plan(&self, now: Duration, older_than: Duration) -> Outcome {
        Outcome::Planned {
            before: now.saturating_sub(older_than),
            upto: self.next_position,
        }
    }

    /// One move batch, in one step: the heads locked, the rows moved cold,
    /// and a locked stream left with no hot rows made cold.
    pub fn move_batch(&mut self, now: Duration, scope: &MoveScope) -> Outcome {
        let Some(mut batch) = pick(&self.rows, &self.heads, &self.busy, scope) else {
            return Outcome::Busy;
        };
        let moved = self.rows.move_cold(&batch.cursors);
        batch.cold = self.make_cold(&batch.locked);
        if moved > 0 {
            self.history.push(
                now,
                Step::Moved {
                    cursors: batch.cursors.clone(),
                    cold: batch.cold.clone(),
                },
            );
        }
        self.check_streams(now, batch.locked.clone());
        Outcome::Moved(batch)
    }

    /// The copy half of a move done as two transactions (`--without
    /// atomic-move`): the rows are written cold and stay hot.
    pub fn copy_batch(&mut self, now: Duration, scope: &MoveScope) -> Outcome {
        let Some(batch) = pick(&self.rows, &self.heads, &self.busy, scope) else {
            return Outcome::Busy;
        };
        if self.rows.copy_cold(&batch.cursors) > 0 {
            self.history.push(now, Step::Copied(batch.cursors.clone()));
        }
        self.check_streams(now, batch.locked.clone());
        Outcome::Copied(batch)
    }

    /// The delete half: the hot copies go, and streams left with no hot
    /// rows become cold.
    pub fn delete_hot(&mut self, now: Duration, cursors: &[Cursor]) -> Outcome {
        let streams: Vec<u32> = self.streams_of(cursors).into_iter().collect();
        let deleted = self.rows.delete_hot(cursors);
        let cold = self.make_cold(&streams);
        if deleted > 0 {
            self.history.push(
                now,
                Step::Deleted {
                    cursors: cursors.to_vec(),
                    cold: cold.clone(),
                },
            );
        }
        self.check_streams(now, streams.clone());
        Outcome::Moved(Batch {
            locked: streams,
            cursors: cursors.to_vec(),
            cold,
        })
    }

    fn streams_of(&self, cursors: &[Cursor]) -> BTreeSet<u32> {
        cursors
            .iter()
            .filter_map(|c| self.rows.get(c))
            .map(|r| r.event.stream)
            .collect()
    }

    /// Gives the archived streams among `streams` that have no hot rows
    /// left retention class cold; returns those that changed.
    fn make_cold(&mut self, streams: &[u32]) -> Vec<u32> {
        let emptied: Vec<u32> = streams
            .iter()
            .copied()
            .filter(|s| self.heads.state(*s).is_archived() && !self.rows.has_hot(*s))
            .collect();
        emptied
            .into_iter()
            .filter(|s| self.heads.update(*s, HeadFlags::moved_cold) == Some(true))
            .collect()
    }

    /// A read of one stream (`EventStore::read_stream`), by version; each
    /// row with the tier it was read from.
    pub fn read_stream(&self, stream: u32, include_archived: bool) -> Vec<(Tier, Row)> {
        let plan = read_plan(include_archived);
        if plan.skip_archived_streams && self.heads.state(stream).is_archived() {
            return Vec::new();
        }
        self.rows.stream(stream, plan)
    }

    /// A read of the whole log (`EventStore::read_all`): up to `limit`
    /// events after `after` in (xid, position) order, each with the tier
    /// it was read from, and only below the [`horizon`](Self::horizon), so
    /// a reader that goes on from the last one never passes an append that
    /// commits later. Without archived data: hot storage, no archived
    /// stream (`READ_HOT_SQL`); with it: every tier (`READ_ALL_SQL`). Like
    /// every read through `rf_read_horizon()`, it raises the read floor.
    pub fn read_all(
        &mut self,
        after: Cursor,
        limit: usize,
        include_archived: bool,
    ) -> Vec<(Tier, Row)> {
        let plan = read_plan(include_archived);
        let horizon = self.horizon();
        let rows = self
            .rows
            .tiered_feed_after(after, plan)
            .into_iter()
            .take_while(|(_, r)| r.event.xid < horizon)
            .filter(|(_, r)| {
                !(plan.skip_archived_streams && self.heads.state(r.event.stream).is_archived())
            })
            .take(limit)
            .collect();
        self.raise_floor();
        rows
    }

    /// ARCH-1 and ARCH-2 after a step: the rows of each stream, across
    /// tiers, are its versions 1..=head once each.
    fn check_streams(&mut self, now: Duration, streams: impl IntoIterator<Item = u32>) {
        for stream in streams {
            let head = self.heads.version(stream);
            let versions: Vec<u64> = self
                .rows
                .stream(stream, read_plan(true))
                .iter()
                .map(|(_, r)| r.event.version)
                .collect();
            if !versions.iter().copied().eq(1..=head) {
                self.violations.push(StoreViolation {
                    at: now,
                    detail: format!(
                        "stream {stream} at version {head} has stored versions {}",
                        compact(&versions)
                    ),
                });
            }
        }
    }

    /// Committed rows.
    pub fn rows(&self) -> &Tiers {
        &self.rows
    }

    /// Stream heads.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// Every decision so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// `[1..=4, 4, 6]` for `[1, 2, 3, 4, 4, 6]`: runs of three or more
/// shortened, short enough for a report.
pub fn compact(versions: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < versions.len() {
        let mut j = i;
        while j + 1 < versions.len() && versions[j + 1] == versions[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}..={}", versions[i], versions[j]));
            i = j + 1;
        } else {
            parts.push(versions[i].to_string());
            i += 1;
        }
    }
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests;
