//! Runs the batches of the partitions this worker owns right now.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rillflow_core::PartitionSpec;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use super::driver::{OwnerSignal, Ownership};
use crate::daemon::TokioClock;
use crate::projection::hold::Hold;
use crate::projection::{BatchError, BatchOutcome, Batches, RuntimeMetrics, WorkerTiming};

/// Makes the batches of one partition of a projection under dynamic
/// ownership (fenced by that partition's lease).
pub trait PartitionBatches: Send + Sync {
    /// The projection's name.
    fn name(&self) -> &str;
    /// Batches of `partition`.
    fn batches(&self, partition: PartitionSpec) -> Arc<dyn Batches>;
}

/// Runs one projection's owned partitions in turn, one batch at a time,
/// each under the epoch its lease is held by. Partitions come and go as the
/// [`super::OwnerDriver`] publishes; a partition whose belief ran out on
/// this worker's clock is not started, and the database's fence refuses
/// whatever that misses.
pub struct OwnedWorker {
    factory: Arc<dyn PartitionBatches>,
    timing: WorkerTiming,
    metrics: Arc<RuntimeMetrics>,
    clock: TokioClock,
}

impl OwnedWorker {
    /// A worker of `factory`'s projection.
    pub fn new(
        factory: Arc<dyn PartitionBatches>,
        timing: WorkerTiming,
        metrics: Arc<RuntimeMetrics>,
        clock: TokioClock,
    ) -> Self {
        OwnedWorker {
            factory,
            timing,
            metrics,
            clock,
        }
    }

    /// Runs until `stop`. Refused batches are reported on `fenced`; `wake`
    /// is notified when events commit.
    pub async fn run(
        &self,
        mut ownership: watch::Receiver<Ownership>,
        fenced: mpsc::Sender<OwnerSignal>,
        wake: &Notify,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut runners: BTreeMap<PartitionSpec, Arc<dyn Batches>> = BTreeMap::new();
        let mut hold = Hold::default();
        loop {
            let now = ownership.borrow_and_update().clone();
            runners.retain(|spec, _| spec.total() == now.partitions);
            let mut busy = false;
            let mut held = false;
            let mut next_wait = self.timing.poll_interval;
            for owned in &now.owned {
                if *stop.borrow() {
                    return;
                }
                if self.clock.now() >= owned.until {
                    continue;
                }
                let Ok(spec) = PartitionSpec::new(owned.partition.into(), now.partitions.into())
                else {
                    continue;
                };
                let batches = runners
                    .entry(spec)
                    .or_insert_with(|| self.factory.batches(spec))
                    .clone();
                let started = Instant::now();
                let outcome = self.batch(batches.as_ref(), owned.epoch).await;
                self.metrics
                    .observe(batches.name(), spec, started.elapsed(), &outcome);
                match outcome {
                    Ok(BatchOutcome::Applied { .. }) => busy = true,
                    Ok(BatchOutcome::HeldBack) => held = true,
                    Ok(BatchOutcome::RetryIn(delay)) => next_wait = next_wait.min(delay),
                    Ok(_) => {}
                    Err(BatchError::Fenced { epoch }) => {
                        tracing::warn!(
                            projection = batches.name(),
                            partition = owned.partition,
                            epoch,
                            "batch refused by the fence: the partition moved"
                        );
                        let partition = owned.partition;
                        let _ = fenced.try_send(OwnerSignal::Fenced { partition, epoch });
                    }
                    Err(BatchError::Repartitioned { recorded, .. }) => {
                        // The owner sees the new count in its next round and
                        // gives this partition up; until then, wait.
                        tracing::info!(
                            projection = batches.name(),
                            recorded,
                            "repartitioned; waiting for the new layout"
                        );
                        next_wait = next_wait.min(self.timing.error_backoff);
                    }
                    Err(error) => {
                        tracing::warn!(projection = batches.name(), partition = owned.partition, %error, "batch failed; will retry");
                        next_wait = next_wait.min(self.timing.error_backoff);
                    }
                }
            }
            let held_for = hold.after_round(Instant::now(), busy, held);
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            if let Some(held_for) = held_for {
                next_wait = next_wait.min(self.timing.held_back_wait(held_for));
            }
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    // A worker that owns nothing waits here: the stop must
                    // end it too, or its owner keeps claiming (sim seed 68).
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
                changed = ownership.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(next_wait) => {}
            }
        }
    }

    async fn batch(&self, batches: &dyn Batches, epoch: u64) -> Result<BatchOutcome, BatchError> {
        let limit: Duration = self.timing.batch_timeout;
        match tokio::time::timeout(limit, batches.run_batch(Some(epoch))).await {
            Ok(outcome) => outcome,
            Err(_) => Err(BatchError::Timeout(format!(
                "batch did not finish within {limit:?}; abandoned"
            ))),
        }
    }
}
