//! A projection split into partitions under dynamic ownership, as the
//! database holds it: the recorded partition count (`rf_projections`), one
//! checkpoint and carry per partition (`rf_checkpoints`), the batch
//! transactions open right now with the row locks they hold, and the read
//! model's application log.
//!
//! A batch is two requests on one connection, as `ProjectionRunner` runs
//! one transaction: [`begin`](PartitionedProjection::begin) takes the fence
//! (the lease row `FOR SHARE`), locks the checkpoint row, compares the
//! partition count and reads the events; [`commit`](PartitionedProjection::commit)
//! applies them, skipping what a carried layer says was applied, moves the
//! checkpoint and prunes the carry. The locks last from one to the other,
//! so a claim or repartition in between waits, as in Postgres.
//!
//! A read also says how far it looked (`partition_read.rs`): a read that
//! came back short moves the checkpoint there; one that found nothing moves
//! it there (in the same step) once that is a batch's worth of positions
//! ahead, so an idle partition's reads stay short.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rillflow_core::ownership::{carry_over, Carry, PartitionState};
use rillflow_core::projection::CheckpointPlacement;
use rillflow_core::GlobalCursor;

use crate::model::log::events::ModelEvents;
use crate::model::log::tiers::Cursor;
use crate::model::ownership::history::{Applied, BatchCommit, Resize};
use crate::model::ownership::partition_leases::PartitionLeases;
use crate::model::ownership::partition_read::{read_partition, stream_hash, PartitionRead};

fn global(cursor: Cursor) -> GlobalCursor {
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    GlobalCursor::new(signed(cursor.0), signed(cursor.1))
}

fn model(cursor: GlobalCursor) -> Cursor {
    let unsigned = |v: i64| u64::try_from(v).unwrap_or(0);
    (unsigned(cursor.tx_id), unsigned(cursor.position))
}

/// What a batch asks for when it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// Projection.
    pub projection: String,
    /// Worker.
    pub worker: String,
    /// Partition key.
    pub partition: u32,
    /// The runner's partition count.
    pub total: u32,
    /// The epoch it holds the partition under.
    pub epoch: u64,
    /// Most events to read.
    pub limit: usize,
}

/// How a batch's beginning went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// A row it needs is locked (or a repartition waits for one): ask
    /// again.
    Busy,
    /// The fence refused the epoch.
    Fenced,
    /// No checkpoint row for this partition.
    Unregistered,
    /// The recorded count differs from the runner's.
    CountChanged(u32),
    /// Nothing below the horizon; nothing stays open.
    Idle,
    /// As `Idle`, but committed events wait above the horizon.
    HeldBack,
    /// Open, with this many events read.
    Opened {
        /// The transaction.
        txn: u64,
        /// Events read.
        read: usize,
    },
}

/// How a repartition went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resizing {
    /// Batches are running: ask again (new batches wait behind it).
    Busy,
    /// No such projection.
    Unknown,
    /// Done (or nothing to do when `from == to`).
    Done {
        /// The count before.
        from: u32,
        /// The count now.
        to: u32,
    },
}

#[derive(Debug, Clone)]
struct OpenBatch {
    request: BatchRequest,
    begun_at: Duration,
    /// Whether it holds the lease row `FOR SHARE` (the fence was checked).
    fenced: bool,
    read: PartitionRead,
}

/// Counts, checkpoints, open batches and what they did.
#[derive(Debug, Clone, Default)]
pub struct PartitionedProjection {
    counts: BTreeMap<String, u32>,
    checkpoints: BTreeMap<(String, u32), PartitionState>,
    open: BTreeMap<u64, OpenBatch>,
    next_txn: u64,
    /// Projections a repartition is waiting on: new batches queue behind
    /// it, as they would behind the lease rows it has locked already.
    resizing: BTreeSet<String>,
    /// Every event application, in commit order.
    pub applied: Vec<Applied>,
    /// Every committed batch.
    pub commits: Vec<BatchCommit>,
    /// Every repartition that changed the count.
    pub resizes: Vec<Resize>,
}

impl PartitionedProjection {
    /// Registers `projection` with `partitions` partitions, all at the
    /// start, unless it is registered already (`register_all`).
    pub fn register(&mut self, projection: &str, partitions: u32) {
        if self.counts.contains_key(projection) {
            return;
        }
        self.counts.insert(projection.to_owned(), partitions);
        for k in 0..partitions {
            self.checkpoints
                .insert((projection.to_owned(), k), PartitionState::default());
        }
    }

    /// The recorded partition count (0 when not registered).
    pub fn count(&self, projection: &str) -> u32 {
        self.counts.get(projection).copied().unwrap_or(0)
    }

    /// A partition's checkpoint and carry.
    pub fn state(&self, projection: &str, partition: u32) -> Option<&PartitionState> {
        self.checkpoints.get(&(projection.to_owned(), partition))
    }

    /// Whether an open batch holds the lease row of this partition
    /// `FOR SHARE`: statements that update that row wait for it.
    pub fn share_locked(&self, projection: &str, partition: u32) -> bool {
        self.open.values().any(|b| {
            b.fenced && b.request.projection == projection && b.request.partition == partition
        })
    }

    fn row_locked(&self, projection: &str, partition: u32) -> bool {
        self.open
            .values()
            .any(|b| b.request.projection == projection && b.request.partition == partition)
    }

    /// Begins a batch at `now`; `fence` off only to show what the fence
    /// prevents.
    pub fn begin(
        &mut self,
        now: Duration,
        request: BatchRequest,
        leases: &PartitionLeases,
        fence: bool,
        events: &ModelEvents,
    ) -> Begin {
        let (projection, partition) = (request.projection.as_str(), request.partition);
        if self.resizing.contains(projection) {
            return Begin::Busy;
        }
        if fence && !leases.admits(now, projection, partition, request.epoch) {
            return Begin::Fenced;
        }
        if self.row_locked(projection, partition) {
            return Begin::Busy;
        }
        let Some(state) = self.state(projection, partition) else {
            return Begin::Unregistered;
        };
        let recorded = self.count(projection);
        if recorded != request.total {
            return Begin::CountChanged(recorded);
        }
        let at = model(state.checkpoint);
        let read = read_partition(events, at, request.partition, request.total, request.limit);
        if read.events.is_empty() {
            let idle = if read.held_back {
                Begin::HeldBack
            } else {
                Begin::Idle
            };
            // Other partitions' events went by: past them once they add up
            // to a batch, in this same transaction.
            let placement = CheckpointPlacement::new(request.limit);
            if let Some(end) = placement.idle_move(global(at), read.passed.map(global)) {
                let batch = OpenBatch {
                    request,
                    begun_at: now,
                    fenced: fence,
                    read,
                };
                self.advance(now, batch, model(end), leases);
            }
            return idle;
        }
        self.next_txn += 1;
        let txn = self.next_txn;
        let n = read.events.len();
        self.open.insert(
            txn,
            OpenBatch {
                request,
                begun_at: now,
                fenced: fence,
                read,
            },
        );
        Begin::Opened { txn, read: n }
    }

    /// Commits batch `txn` at `now`: applies its events but those a carried
    /// layer covers, moves the checkpoint past all it read (and past
    /// `passed` when the read came back short: nothing of the partition lay
    /// between), prunes the carry. None when the transaction is gone
    /// (rolled back meanwhile).
    pub fn commit(&mut self, now: Duration, txn: u64, leases: &PartitionLeases) -> Option<usize> {
        let batch = self.open.remove(&txn)?;
        let read = &batch.read;
        let last = read
            .events
            .last()
            .expect("an open batch read events")
            .cursor();
        let placement = CheckpointPlacement::new(batch.request.limit);
        let end = placement.place(global(last), read.events.len(), read.passed.map(global));
        Some(self.advance(now, batch, model(end), leases))
    }

    /// Applies what `batch` read but what the carry covers, moves its
    /// checkpoint to `end`, prunes the carry, and records the commit; how
    /// many events it applied.
    fn advance(
        &mut self,
        now: Duration,
        batch: OpenBatch,
        end: Cursor,
        leases: &PartitionLeases,
    ) -> usize {
        let r = &batch.request;
        let slot = (r.projection.clone(), r.partition);
        let state = self
            .checkpoints
            .get(&slot)
            .cloned()
            .expect("a batch holds its checkpoint row, which nothing deletes meanwhile");
        let mut applied = 0;
        for e in &batch.read.events {
            if state
                .carry
                .already_applied(stream_hash(e.stream), global(e.cursor()))
            {
                continue;
            }
            applied += 1;
            self.applied.push(Applied {
                at: now,
                worker: r.worker.clone(),
                partition: (r.partition, r.total),
                epoch: r.epoch,
                cursor: e.cursor(),
                stream: e.stream,
                version: e.version,
            });
        }
        let end = global(end);
        self.checkpoints.insert(
            slot,
            PartitionState {
                checkpoint: end,
                carry: state.carry.pruned(end),
            },
        );
        let lease = leases
            .row(&r.projection, r.partition)
            .map(|row| (row.owner.clone(), row.epoch));
        self.commits.push(BatchCommit {
            begun_at: batch.begun_at,
            at: now,
            worker: r.worker.clone(),
            partition: r.partition,
            total: r.total,
            epoch: r.epoch,
            lease,
            recorded_total: self.count(&r.projection),
            read: batch.read.events.len(),
            applied,
        });
        applied
    }

    /// Rolls batch `txn` back (its connection ended); false when it was
    /// not open.
    pub fn abort(&mut self, txn: u64) -> bool {
        self.open.remove(&txn).is_some()
    }

    /// A database restart ends every transaction, and a waiting
    /// repartition with them.
    pub fn abort_all(&mut self) {
        self.open.clear();
        self.resizing.clear();
    }

    /// A repartition stopped waiting (its lock timeout).
    pub fn gave_up(&mut self, projection: &str) {
        self.resizing.remove(projection);
    }

    /// `Repartitioner::run` at `now`, in one step once no batch of the
    /// projection is open: frees its leases, starts every new partition at
    /// the lowest old checkpoint carrying the old ones (`carry_over`;
    /// without `carry`, the layers are dropped, only to show what they
    /// prevent), records the new count.
    pub fn repartition(
        &mut self,
        now: Duration,
        projection: &str,
        to: u32,
        carry: bool,
        leases: &mut PartitionLeases,
    ) -> Resizing {
        let Some(from) = self.counts.get(projection).copied() else {
            return Resizing::Unknown;
        };
        if from == to {
            self.resizing.remove(projection);
            return Resizing::Done { from, to };
        }
        if self
            .open
            .values()
            .any(|b| b.request.projection == projection)
        {
            self.resizing.insert(projection.to_owned());
            return Resizing::Busy;
        }
        self.resizing.remove(projection);
        let leases_freed = leases.free_all(projection);
        let old: Vec<PartitionState> = (0..from)
            .map(|k| self.state(projection, k).cloned().unwrap_or_default())
            .collect();
        let mut start = carry_over(&old);
        if !carry {
            start.carry = Carry::none();
        }
        self.checkpoints.retain(|(p, _), _| p != projection);
        for k in 0..to {
            self.checkpoints
                .insert((projection.to_owned(), k), start.clone());
        }
        self.counts.insert(projection.to_owned(), to);
        self.resizes.push(Resize {
            at: now,
            from,
            to,
            start: model(start.checkpoint),
            layers: start.carry.layers().len(),
            leases_freed,
        });
        Resizing::Done { from, to }
    }
}

#[cfg(test)]
mod tests {
    use rillflow_core::partition_of;

    use super::*;

    const P: &str = "p";

    fn request(worker: &str, partition: u32, total: u32, epoch: u64) -> BatchRequest {
        BatchRequest {
            projection: P.to_owned(),
            worker: worker.to_owned(),
            partition,
            total,
            epoch,
            limit: 100,
        }
    }

    /// Streams 0..n, `per` events each, committed one append per stream.
    fn log(n: u32, per: u32) -> ModelEvents {
        let mut events = ModelEvents::default();
        for stream in 0..n {
            let append = crate::model::log::events::AppendRequest {
                stream,
                expected: rillflow_core::ExpectedVersion::Any,
                key: None,
                payloads: vec![0; per as usize],
            };
            let crate::model::log::events::Outcome::Started { xid, .. } =
                events.begin(Duration::ZERO, &append)
            else {
                panic!("the append starts");
            };
            events.end(Duration::ZERO, xid, true);
        }
        events
    }

    fn run(
        proj: &mut PartitionedProjection,
        leases: &mut PartitionLeases,
        events: &ModelEvents,
        partition: u32,
        total: u32,
    ) -> usize {
        let epoch = match leases.row(P, partition) {
            Some(row) if row.valid(Duration::ZERO) => row.epoch,
            _ => leases
                .claim(Duration::ZERO, P, partition, "w", Duration::from_secs(3))
                .expect("free"),
        };
        match proj.begin(
            Duration::ZERO,
            request("w", partition, total, epoch),
            leases,
            true,
            events,
        ) {
            Begin::Opened { txn, .. } => proj.commit(Duration::ZERO, txn, leases).expect("open"),
            Begin::Idle => 0,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partitions_split_the_log_and_a_repartition_neither_skips_nor_repeats() {
        let events = log(24, 3);
        let mut leases = PartitionLeases::default();
        let mut proj = PartitionedProjection::default();
        proj.register(P, 3);
        // Partition 0 catches up, 1 does part, 2 nothing.
        run(&mut proj, &mut leases, &events, 0, 3);
        let mut one = request("w", 1, 3, 0);
        one.limit = 2;
        let epoch = leases
            .claim(Duration::ZERO, P, 1, "w", Duration::from_secs(3))
            .unwrap();
        one.epoch = epoch;
        let Begin::Opened { txn, .. } = proj.begin(Duration::ZERO, one, &leases, true, &events)
        else {
            panic!("opens");
        };
        assert_eq!(
            proj.repartition(Duration::ZERO, P, 5, true, &mut leases),
            Resizing::Busy,
            "a running batch holds it up"
        );
        assert!(matches!(
            proj.begin(
                Duration::ZERO,
                request("w", 0, 3, 1),
                &leases,
                true,
                &events
            ),
            Begin::Busy
        ));
        proj.commit(Duration::ZERO, txn, &leases);
        assert_eq!(
            proj.repartition(Duration::ZERO, P, 5, true, &mut leases),
            Resizing::Done { from: 3, to: 5 }
        );
        assert!(matches!(
            proj.begin(
                Duration::ZERO,
                request("w", 0, 3, 1),
                &leases,
                true,
                &events
            ),
            Begin::Fenced
        ));
        for k in 0..5 {
            run(&mut proj, &mut leases, &events, k, 5);
        }
        let mut seen: Vec<Cursor> = proj.applied.iter().map(|a| a.cursor).collect();
        seen.sort();
        let all: Vec<Cursor> = events.rows().all().map(|(_, r)| r.event.cursor()).collect();
        assert_eq!(seen, all, "every event once");
    }

    #[test]
    fn without_the_carry_a_repartition_repeats_events() {
        let events = log(24, 3);
        let mut leases = PartitionLeases::default();
        let mut proj = PartitionedProjection::default();
        proj.register(P, 2);
        run(&mut proj, &mut leases, &events, 0, 2);
        proj.repartition(Duration::ZERO, P, 4, false, &mut leases);
        for k in 0..4 {
            run(&mut proj, &mut leases, &events, k, 4);
        }
        assert!(proj.applied.len() > events.rows().len());
    }

    #[test]
    fn an_idle_partition_moves_past_others_events_but_never_past_an_open_append() {
        let in_p0: Vec<u32> = (0..200)
            .filter(|s| partition_of(stream_hash(*s), 2) == 0)
            .take(12)
            .collect();
        let mut events = ModelEvents::default();
        let append = |stream: u32| crate::model::log::events::AppendRequest {
            stream,
            expected: rillflow_core::ExpectedVersion::Any,
            key: None,
            payloads: vec![0],
        };
        let mut xids = Vec::new();
        for s in &in_p0 {
            let crate::model::log::events::Outcome::Started { xid, .. } =
                events.begin(Duration::ZERO, &append(*s))
            else {
                panic!("starts");
            };
            xids.push(xid);
        }
        // The first stays open: the horizon. The rest commit behind it.
        for xid in &xids[1..] {
            events.end(Duration::ZERO, *xid, true);
        }
        let mut leases = PartitionLeases::default();
        let mut proj = PartitionedProjection::default();
        proj.register(P, 2);
        let e = leases
            .claim(Duration::ZERO, P, 1, "w", Duration::from_secs(3))
            .unwrap();
        let mut idle = request("w", 1, 2, e);
        idle.limit = 5;
        let begin = |proj: &mut PartitionedProjection, events: &ModelEvents| {
            proj.begin(Duration::ZERO, idle.clone(), &leases, true, events)
        };
        // Committed events wait behind the open one: look again soon.
        assert_eq!(begin(&mut proj, &events), Begin::HeldBack);
        assert_eq!(
            proj.state(P, 1).unwrap().checkpoint,
            GlobalCursor::START,
            "nothing below the horizon to pass"
        );
        events.end(Duration::ZERO, xids[0], true);
        assert_eq!(begin(&mut proj, &events), Begin::Idle);
        let last = events.rows().last_below(u64::MAX).unwrap();
        assert_eq!(model(proj.state(P, 1).unwrap().checkpoint), last);
        assert_eq!(proj.commits.len(), 1, "the move is a fenced commit too");
        assert_eq!(proj.commits[0].read, 0);
    }

    #[test]
    fn the_count_and_the_checkpoint_row_gate_a_batch() {
        let events = log(4, 1);
        let mut leases = PartitionLeases::default();
        let mut proj = PartitionedProjection::default();
        proj.register(P, 2);
        let e = leases
            .claim(Duration::ZERO, P, 0, "w", Duration::from_secs(3))
            .unwrap();
        assert_eq!(
            proj.begin(
                Duration::ZERO,
                request("w", 0, 4, e),
                &leases,
                true,
                &events
            ),
            Begin::CountChanged(2)
        );
        let e5 = leases
            .claim(Duration::ZERO, P, 5, "w", Duration::from_secs(3))
            .unwrap();
        assert_eq!(
            proj.begin(
                Duration::ZERO,
                request("w", 5, 2, e5),
                &leases,
                true,
                &events
            ),
            Begin::Unregistered
        );
    }
}
