//! One projection partition's batches: exactly once, gap safe, poison safe.

use std::sync::Arc;
use std::time::Duration;

use rillflow_core::ownership::Carry;
use rillflow_core::projection::CheckpointPlacement;
use rillflow_core::{BatchReplay, FailureDecision, GlobalCursor, PartitionSpec, ReplayStep};
use sqlx::{PgConnection, Postgres, Transaction};

use super::batch_error::BatchError;
use super::batch_sql::{self as sql, BatchOwner, LockedCheckpoint, Progress, Slot};
use super::budget::BudgetWatch;
use super::fence::WriteFence;
use super::handler::Projection;
use crate::event::RecordedEvent;
use crate::replica::ReadReplica;
use crate::store::{EventStore, PartitionRead};

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Events were read and the checkpoint moved past them.
    Applied {
        /// Events read (handled or skipped).
        read: usize,
        /// Events the handler applied (requeued dead letters included).
        applied: usize,
    },
    /// Nothing new below the visibility horizon.
    Idle,
    /// Nothing new below the horizon, but committed events wait behind a
    /// transaction that is still open. Its end wakes nobody unless it
    /// appended, so the worker looks again soon instead of waiting for the
    /// next wake-up.
    HeldBack,
    /// The projection is paused (by an operator or by the stop policy).
    Paused,
    /// An event failed; it is tried again after this delay.
    RetryIn(Duration),
    /// An event kept failing under the stop policy: the projection paused.
    Stopped,
}

/// Runs batches of one projection over one partition.
///
/// Each batch is one transaction opened through the [`WriteFence`]: it locks
/// the partition's checkpoint row, reads the next events through the
/// gap-safe reader (PROJ-2) in (tx_id, position) order, which keeps each
/// stream's order (PROJ-3), applies them and moves the checkpoint, then
/// commits, so effects and checkpoint land together or not at all (PROJ-1).
///
/// The fast path hands all events to [`Projection::apply_batch`] at once.
/// If that fails the transaction is rolled back and the batch is replayed
/// one event at a time, each inside a savepoint, so a failing handler never
/// aborts the batch's bookkeeping: the events before it commit, and the
/// failure is retried later, dead-lettered or stops the projection (PROJ-5).
///
/// With a time budget ([`ProjectionRunner::with_budget`]) the handlers of a
/// batch get that long in all; a batch cut short commits the events applied
/// before the cut, and an event is charged with a failure only when it had
/// the whole budget to itself.
///
/// With a read replica ([`ProjectionRunner::reading_from`]) the events are
/// read from the standby instead, while the batch's transaction on the
/// primary holds the checkpoint row: the read starts at the locked
/// checkpoint, so nothing is applied twice, and a standby that is behind
/// only has less to give. Its horizon is its own snapshot's xmin, which
/// never passes a transaction that may still commit events there.
pub struct ProjectionRunner {
    projection: Arc<dyn Projection>,
    partition: PartitionSpec,
    owner: BatchOwner,
    version: u32,
    budget: Option<Duration>,
    replica: Option<ReadReplica>,
}

impl ProjectionRunner {
    /// A runner of `projection` over `partition`, committing as `owner`.
    pub fn new(
        projection: Arc<dyn Projection>,
        partition: PartitionSpec,
        owner: BatchOwner,
    ) -> Self {
        ProjectionRunner {
            projection,
            partition,
            owner,
            version: 1,
            budget: None,
            replica: None,
        }
    }

    /// This runner reading events from `replica` (a hot standby) instead
    /// of from the primary it writes to.
    pub fn reading_from(mut self, replica: ReadReplica) -> Self {
        self.replica = Some(replica);
        self
    }

    /// This runner with `budget` for the handlers of each batch: each of
    /// their statements may run that long (whatever the session's own
    /// `statement_timeout`), and whatever still runs when it is spent is
    /// cancelled. Without one, the session's limits alone apply.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The projection run.
    pub fn projection(&self) -> &Arc<dyn Projection> {
        &self.projection
    }

    /// The partition run.
    pub fn partition(&self) -> PartitionSpec {
        self.partition
    }

    /// The read-model version this runner writes (1 unless versioned).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// This runner of another read-model version of the same projection
    /// (`projection` is that version's handler).
    pub fn at_version(&self, projection: Arc<dyn Projection>, version: u32) -> Self {
        ProjectionRunner {
            projection,
            partition: self.partition,
            owner: self.owner.clone(),
            version,
            budget: self.budget,
            replica: self.replica.clone(),
        }
    }

    fn slot(&self) -> Slot<'_> {
        Slot {
            projection: self.projection.name(),
            version: self.version as i32,
            key: self.partition.key() as i32,
        }
    }

    /// Runs one batch through `fence`.
    pub async fn run_batch(&self, fence: &WriteFence) -> Result<BatchOutcome, BatchError> {
        let owner = self.owner_under(fence);
        let opened = match self.open(fence).await? {
            Ok(opened) => opened,
            Err(outcome) => return Ok(outcome),
        };
        if !opened.requeued.is_empty() || opened.checkpoint.retry_position.is_some() {
            // Work that is expected to fail goes straight to the slow path.
            let suspect = opened.checkpoint.retry_position;
            return self
                .careful(fence, opened, &owner, Careful::Runs { suspect })
                .await;
        }
        let Opened {
            mut tx,
            events,
            checkpoint,
            passed,
            mut watch,
            ..
        } = opened;
        let handled: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| self.projection.handles(&e.event_type) && !carried(&checkpoint, e))
            .collect();
        let applied = match &watch {
            Some(w) => {
                w.during(self.projection.apply_batch(&mut tx, &handled))
                    .await
            }
            None => self.projection.apply_batch(&mut tx, &handled).await,
        };
        disarm(&mut watch).await;
        if let Err(failure) = applied {
            let mode = if watch.as_ref().is_some_and(BudgetWatch::spent) {
                // Over budget: one event at a time, the slow path commits
                // what fits and charges only an event that alone did not fit.
                Careful::OneByOne
            } else {
                let suspect = handled.get(failure.index).map(|e| e.position);
                Careful::Runs { suspect }
            };
            drop(handled);
            tx.rollback().await?;
            return match self.open(fence).await? {
                Ok(opened) => self.careful(fence, opened, &owner, mode).await,
                Err(outcome) => Ok(outcome),
            };
        }
        let last = events.last().expect("an opened batch has events");
        let progress = Progress {
            processed: handled.len() as i64,
            ..Progress::default()
        };
        let end = self.placement().place(last.cursor(), events.len(), passed);
        let carry = pruned_carry(&checkpoint, end);
        sql::advance(&mut tx, &self.slot(), end, progress, &owner, carry.as_ref()).await?;
        tx.commit().await?;
        Ok(BatchOutcome::Applied {
            read: events.len(),
            applied: handled.len(),
        })
    }

    /// Opens a batch: the transaction, the locked checkpoint and what there
    /// is to apply; or the outcome when there is nothing to do (the
    /// transaction is then rolled back).
    async fn open(&self, fence: &WriteFence) -> Result<Result<Opened, BatchOutcome>, BatchError> {
        let mut tx = fence.begin().await?;
        let checkpoint = self.lock(&mut tx).await?;
        if checkpoint.total_partitions != self.partition.total() {
            // The projection was repartitioned: this runner's slice of the
            // log is no longer a partition. Nothing is written.
            tx.rollback().await?;
            return Err(BatchError::Repartitioned {
                projection: self.projection.name().to_owned(),
                running: self.partition.total(),
                recorded: checkpoint.total_partitions,
            });
        }
        if let Some(outcome) = blocked(&checkpoint) {
            tx.rollback().await?;
            return Ok(Err(outcome));
        }
        let requeued = sql::requeued(&mut tx, &self.slot()).await?;
        let PartitionRead {
            events,
            passed,
            held_back,
        } = self.read(&mut tx, checkpoint.cursor).await?;
        if events.is_empty() && requeued.is_empty() {
            // Nothing of this partition, but other partitions' events may
            // have gone by: the placement says when to move past them.
            match self.placement().idle_move(checkpoint.cursor, passed) {
                Some(end) => {
                    let owner = self.owner_under(fence);
                    let carry = pruned_carry(&checkpoint, end);
                    let progress = Progress::default();
                    sql::advance(&mut tx, &self.slot(), end, progress, &owner, carry.as_ref())
                        .await?;
                    tx.commit().await?;
                }
                None => tx.rollback().await?,
            }
            return Ok(Err(if held_back {
                BatchOutcome::HeldBack
            } else {
                BatchOutcome::Idle
            }));
        }
        // Armed last: the bookkeeping above ran under the session's limits,
        // and the handlers get the whole budget.
        let watch = match self.budget {
            Some(budget) => Some(BudgetWatch::arm(&mut tx, fence.pool(), budget).await?),
            None => None,
        };
        Ok(Ok(Opened {
            tx,
            checkpoint,
            requeued,
            events,
            passed,
            watch,
        }))
    }

    fn owner_under(&self, fence: &WriteFence) -> BatchOwner {
        BatchOwner {
            node: self.owner.node.clone(),
            epoch: fence.epoch().or(self.owner.epoch),
        }
    }

    async fn lock(&self, conn: &mut PgConnection) -> Result<LockedCheckpoint, BatchError> {
        sql::lock_checkpoint(conn, &self.slot())
            .await?
            .ok_or_else(|| BatchError::Unregistered(self.projection.name().to_owned()))
    }

    fn placement(&self) -> CheckpointPlacement {
        CheckpointPlacement::new(self.projection.options().batch_size as usize)
    }

    async fn read(
        &self,
        conn: &mut PgConnection,
        after: GlobalCursor,
    ) -> Result<PartitionRead, BatchError> {
        let limit = self.placement().limit() as i64;
        Ok(match &self.replica {
            Some(replica) => replica.read_partition(after, limit, self.partition).await?,
            None => EventStore::read_partition_in(conn, after, limit, self.partition).await?,
        })
    }

    /// The slow path: [`Self::careful_in`], started over one event at a
    /// time when a run of events used up the budget before anything was
    /// applied (no event can be blamed for that, and the first event must
    /// get a whole budget to itself before it is charged).
    async fn careful(
        &self,
        fence: &WriteFence,
        opened: Opened,
        owner: &BatchOwner,
        mode: Careful,
    ) -> Result<BatchOutcome, BatchError> {
        if let Some(outcome) = self.careful_in(opened, owner, mode).await? {
            return Ok(outcome);
        }
        match self.open(fence).await? {
            Ok(opened) => Ok(self
                .careful_in(opened, owner, Careful::OneByOne)
                .await?
                .expect("one event at a time never starts over")),
            Err(outcome) => Ok(outcome),
        }
    }

    /// Applies requeued dead letters, each in a savepoint, then `events`:
    /// in runs handed to [`Projection::apply_batch`] in a savepoint each,
    /// an event that fails (or is suspected) alone in a savepoint, or, in
    /// [`Careful::OneByOne`], every event alone. None when the transaction
    /// was rolled back to start over one by one.
    async fn careful_in(
        &self,
        opened: Opened,
        owner: &BatchOwner,
        mode: Careful,
    ) -> Result<Option<BatchOutcome>, BatchError> {
        let Opened {
            mut tx,
            checkpoint,
            requeued,
            events,
            passed: passed_by_read,
            mut watch,
        } = opened;
        let slot = self.slot();
        let name = slot.projection;
        let mut progress = Progress::default();
        let mut applied = 0;
        // Whether the budget ran out with work done: the rest is left to
        // the next batch, which gives it a fresh budget.
        let cut = |watch: &Option<BudgetWatch>, progress: &Progress| {
            watch.as_ref().is_some_and(BudgetWatch::spent)
                && progress.processed + progress.errors > 0
        };
        let mut stopped = false;
        for (id, event) in &requeued {
            if cut(&watch, &progress) {
                stopped = true;
                break;
            }
            match self.apply_in_savepoint(&mut tx, event, &watch).await? {
                Ok(()) => {
                    sql::forget_dead_letter(&mut tx, *id).await?;
                    progress.processed += 1;
                    applied += 1;
                }
                Err(_) if cut(&watch, &progress) => {
                    stopped = true;
                    break;
                }
                Err(error) => {
                    // Requeued once by an operator, failed again: back to
                    // the dead letters, where the operator will see it.
                    sql::refail_dead_letter(&mut tx, *id, &error).await?;
                    sql::record_error(&mut tx, &slot, &error).await?;
                    progress.errors += 1;
                }
            }
        }
        let policy = self.projection.options().retry;
        // The events to apply, by index into `events`; the others are passed.
        let handled: Vec<usize> = if stopped {
            Vec::new()
        } else {
            (0..events.len())
                .filter(|i| {
                    let e = &events[*i];
                    self.projection.handles(&e.event_type) && !carried(&checkpoint, e)
                })
                .collect()
        };
        let h = handled.len();
        let mut plan = match mode {
            Careful::OneByOne => BatchReplay::one_by_one(h),
            Careful::Runs { suspect } => BatchReplay::new(
                h,
                suspect.and_then(|p| handled.iter().position(|i| events[*i].position == p)),
            ),
        };
        let mut attempts = 0;
        let spent = |watch: &Option<BudgetWatch>| watch.as_ref().is_some_and(BudgetWatch::spent);
        // Where the checkpoint may go: past every event before the first
        // handled one not done.
        let passed = |next: usize| -> (usize, GlobalCursor) {
            let upto = if stopped {
                0
            } else if next == h {
                events.len()
            } else {
                handled[next]
            };
            let cursor = match upto {
                0 => checkpoint.cursor,
                n => events[n - 1].cursor(),
            };
            (upto, cursor)
        };
        loop {
            if cut(&watch, &progress) {
                break;
            }
            let tried_before = attempts > 0;
            attempts += 1;
            let at = match plan.step() {
                ReplayStep::Done => break,
                ReplayStep::Run(range) => {
                    let run: Vec<&RecordedEvent> =
                        handled[range].iter().map(|i| &events[*i]).collect();
                    match self.apply_run(&mut tx, &run, &watch).await? {
                        Ok(()) => {
                            progress.processed += run.len() as i64;
                            applied += run.len();
                            plan.run_applied();
                        }
                        Err(_) if cut(&watch, &progress) => break,
                        Err(_) if spent(&watch) => {
                            tx.rollback().await?;
                            return Ok(None);
                        }
                        Err(index) => plan.run_failed(index),
                    }
                    continue;
                }
                ReplayStep::Alone(at) => at,
            };
            let event = &events[handled[at]];
            let error = match self.apply_in_savepoint(&mut tx, event, &watch).await? {
                Ok(()) => {
                    progress.processed += 1;
                    applied += 1;
                    plan.alone_applied();
                    continue;
                }
                Err(_) if cut(&watch, &progress) => break,
                Err(_) if spent(&watch) && tried_before => {
                    tx.rollback().await?;
                    return Ok(None);
                }
                Err(error) => error,
            };
            let failures = match checkpoint.retry_position {
                Some(p) if p == event.position => checkpoint.retry_attempts + 1,
                _ => 1,
            };
            progress.errors += 1;
            sql::record_error(&mut tx, &slot, &error).await?;
            tracing::warn!(projection = name, partition = slot.key, version = slot.version, position = event.position, failures, %error, "handler failed");
            let (_, cursor) = passed(plan.done());
            match policy.decide(failures) {
                FailureDecision::Retry { delay } => {
                    let carry = pruned_carry(&checkpoint, cursor);
                    sql::advance(&mut tx, &slot, cursor, progress, owner, carry.as_ref()).await?;
                    sql::schedule_retry(&mut tx, &slot, event.position, failures, delay).await?;
                    tx.commit().await?;
                    return Ok(Some(BatchOutcome::RetryIn(delay)));
                }
                FailureDecision::DeadLetter => {
                    sql::dead_letter(&mut tx, &slot, event, &error, failures).await?;
                    progress.dead_lettered += 1;
                    plan.alone_passed();
                }
                FailureDecision::Stop => {
                    let carry = pruned_carry(&checkpoint, cursor);
                    sql::advance(&mut tx, &slot, cursor, progress, owner, carry.as_ref()).await?;
                    let reason = format!(
                        "event at position {} failed {failures} times: {error}",
                        event.position
                    );
                    sql::stop_projection(&mut tx, name, &reason).await?;
                    tx.commit().await?;
                    return Ok(Some(BatchOutcome::Stopped));
                }
            }
        }
        disarm(&mut watch).await;
        let (read, cursor) = passed(plan.done());
        // Every event read was handled: the stretch the read passed is done.
        let cursor = match events.last() {
            Some(last) if read == events.len() && last.cursor() == cursor => {
                self.placement().place(cursor, events.len(), passed_by_read)
            }
            _ => cursor,
        };
        let carry = pruned_carry(&checkpoint, cursor);
        sql::advance(&mut tx, &slot, cursor, progress, owner, carry.as_ref()).await?;
        tx.commit().await?;
        Ok(Some(BatchOutcome::Applied { read, applied }))
    }

    /// Applies a run of events with [`Projection::apply_batch`] inside a
    /// savepoint. The outer error is a broken transaction; the inner one is
    /// the index the handler blamed, its effects rolled back.
    async fn apply_run(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        run: &[&RecordedEvent],
        watch: &Option<BudgetWatch>,
    ) -> Result<Result<(), usize>, BatchError> {
        sqlx::query("SAVEPOINT rf_run").execute(&mut **tx).await?;
        let applied = match watch {
            Some(w) => w.during(self.projection.apply_batch(tx, run)).await,
            None => self.projection.apply_batch(tx, run).await,
        };
        match applied {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT rf_run")
                    .execute(&mut **tx)
                    .await?;
                Ok(Ok(()))
            }
            Err(failure) => {
                sqlx::query("ROLLBACK TO SAVEPOINT rf_run")
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT rf_run")
                    .execute(&mut **tx)
                    .await?;
                Ok(Err(failure.index))
            }
        }
    }

    /// Applies one event inside a savepoint. The outer error is a broken
    /// transaction; the inner one is the handler's failure, already rolled
    /// back to the savepoint.
    async fn apply_in_savepoint(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        event: &RecordedEvent,
        watch: &Option<BudgetWatch>,
    ) -> Result<Result<(), String>, BatchError> {
        sqlx::query("SAVEPOINT rf_event").execute(&mut **tx).await?;
        let applied = match watch {
            Some(w) => w.during(self.projection.apply(tx, event)).await,
            None => self.projection.apply(tx, event).await,
        };
        match applied {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT rf_event")
                    .execute(&mut **tx)
                    .await?;
                Ok(Ok(()))
            }
            Err(error) => {
                sqlx::query("ROLLBACK TO SAVEPOINT rf_event")
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT rf_event")
                    .execute(&mut **tx)
                    .await?;
                Ok(Err(error.to_string()))
            }
        }
    }
}

/// How the slow path goes through a batch.
#[derive(Debug, Clone, Copy)]
enum Careful {
    /// Runs of events through [`Projection::apply_batch`], an event that
    /// fails alone; `suspect` is the position of an event that failed
    /// before, which goes alone after the run before it.
    Runs { suspect: Option<i64> },
    /// Every event alone (after a batch ran out of its budget).
    OneByOne,
}

/// An open batch transaction with its locked checkpoint and its work.
struct Opened {
    tx: Transaction<'static, Postgres>,
    checkpoint: LockedCheckpoint,
    requeued: Vec<(i64, RecordedEvent)>,
    events: Vec<RecordedEvent>,
    /// How far the read looked (see [`PartitionRead::passed`]).
    passed: Option<GlobalCursor>,
    /// The handlers' time budget, when the runner has one.
    watch: Option<BudgetWatch>,
}

/// Ends the handlers' budget once they are done, so the watchdog task does
/// not outlive the batch.
async fn disarm(watch: &mut Option<BudgetWatch>) {
    if let Some(w) = watch {
        w.disarm().await;
    }
}

/// True when an earlier partitioning applied `event` already (it is read
/// again because a repartition started this partition at the lowest of the
/// old checkpoints).
fn carried(checkpoint: &LockedCheckpoint, event: &RecordedEvent) -> bool {
    checkpoint
        .carry
        .already_applied(event.partition_hash, event.cursor())
}

/// The carry to store once the checkpoint is at `cursor`, when it changes.
fn pruned_carry(checkpoint: &LockedCheckpoint, cursor: GlobalCursor) -> Option<Carry> {
    if checkpoint.carry.is_empty() {
        return None;
    }
    Some(checkpoint.carry.clone().pruned(cursor))
}

/// Why a locked checkpoint allows no batch right now.
fn blocked(checkpoint: &LockedCheckpoint) -> Option<BatchOutcome> {
    if checkpoint.paused {
        return Some(BatchOutcome::Paused);
    }
    checkpoint.retry_wait.map(BatchOutcome::RetryIn)
}
