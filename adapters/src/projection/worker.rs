//! The loop that keeps a node's projections caught up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::hold::Hold;

use super::batch_error::BatchError;
use super::batches::Batches;
use super::metrics::RuntimeMetrics;
use super::runner::BatchOutcome;
use crate::daemon::WriteGate;

/// How a worker waits when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTiming {
    /// Longest wait without a notification before looking again.
    pub poll_interval: Duration,
    /// Wait after a database failure before the next batch.
    pub error_backoff: Duration,
    /// A batch still running after this long is abandoned (its transaction
    /// rolls back) and retried. Without a bound, a connection whose replies
    /// vanish would stall the projection forever while the node, renewing
    /// its lease on other connections, stays hot.
    pub batch_timeout: Duration,
    /// First wait before looking again at events held back by an open
    /// transaction ([`BatchOutcome::HeldBack`]); later waits are as long as
    /// they have been held so far, up to `poll_interval`. The end of that
    /// transaction notifies nobody when it appended nothing, so without
    /// this a worker woken by events it could not read yet would sleep a
    /// whole poll interval.
    pub held_back_retry: Duration,
}

impl Default for WorkerTiming {
    fn default() -> Self {
        WorkerTiming {
            poll_interval: Duration::from_secs(1),
            error_backoff: Duration::from_millis(500),
            batch_timeout: Duration::from_secs(30),
            held_back_retry: Duration::from_millis(20),
        }
    }
}

impl WorkerTiming {
    /// The wait before looking again at events held back for `held_for`
    /// so far: about that long again (so a short-lived holder costs a few
    /// milliseconds and a long one a look every poll interval), at least
    /// `held_back_retry`, at most `poll_interval`. Measured in time, not in
    /// rounds: wake-ups from appends that are held back too must not
    /// stretch it.
    pub fn held_back_wait(&self, held_for: Duration) -> Duration {
        held_for.min(self.poll_interval).max(self.held_back_retry)
    }
}

/// Why a worker returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// Asked to stop; the current batch finished first.
    Stopped,
    /// The lease ran out on this node's clock, or the fence refused a batch:
    /// another node writes now.
    LeaseLost,
}

/// Runs batches of several projections in turn, one transaction at a time.
///
/// One at a time on purpose: in hot/cold mode every batch holds the
/// cluster row `FOR SHARE`, and overlapping share locks could keep the
/// node's own lease renewal waiting indefinitely.
pub struct ProjectionWorker {
    runners: Vec<Arc<dyn Batches>>,
    timing: WorkerTiming,
    metrics: Arc<RuntimeMetrics>,
}

/// The lease a hot node writes under: its epoch and the gate that says
/// whether the node still believes it holds it.
#[derive(Debug, Clone)]
pub struct LeaseCheck {
    /// The epoch.
    pub epoch: u64,
    /// The node's belief.
    pub gate: WriteGate,
}

impl ProjectionWorker {
    /// A worker over `runners`.
    pub fn new(
        runners: Vec<Arc<dyn Batches>>,
        timing: WorkerTiming,
        metrics: Arc<RuntimeMetrics>,
    ) -> Self {
        ProjectionWorker {
            runners,
            timing,
            metrics,
        }
    }

    /// Runs until stopped or until the lease is lost. `wake` is notified
    /// when events commit.
    pub async fn run(
        &self,
        lease: Option<&LeaseCheck>,
        wake: &Notify,
        mut stop: watch::Receiver<bool>,
    ) -> WorkerExit {
        let epoch = lease.map(|l| l.epoch);
        let mut hold = Hold::default();
        loop {
            // Checked here too, not only between batches: a worker with no
            // projections runs no batch and would never see the stop.
            if *stop.borrow() {
                return WorkerExit::Stopped;
            }
            let mut busy = false;
            let mut held = false;
            let mut next_wait = self.timing.poll_interval;
            for runner in &self.runners {
                if *stop.borrow() {
                    return WorkerExit::Stopped;
                }
                // The local belief first: past its own deadline a node does
                // not even try; the fence catches whatever this misses.
                if let Some(lease) = lease {
                    if lease.gate.epoch_now() != Some(lease.epoch) {
                        return WorkerExit::LeaseLost;
                    }
                }
                let started = Instant::now();
                let limit = self.timing.batch_timeout;
                let outcome = match tokio::time::timeout(limit, runner.run_batch(epoch)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(BatchError::Timeout(format!(
                        "batch did not finish within {limit:?}; abandoned"
                    ))),
                };
                self.metrics.observe(
                    runner.name(),
                    runner.partition(),
                    started.elapsed(),
                    &outcome,
                );
                match outcome {
                    Ok(BatchOutcome::Applied { .. }) => busy = true,
                    Ok(BatchOutcome::HeldBack) => held = true,
                    Ok(BatchOutcome::Idle | BatchOutcome::Paused | BatchOutcome::Stopped) => {}
                    Ok(BatchOutcome::RetryIn(delay)) => next_wait = next_wait.min(delay),
                    Err(BatchError::Fenced { epoch }) => {
                        tracing::warn!(
                            epoch,
                            "batch refused by the fence: another node holds the lease"
                        );
                        return WorkerExit::LeaseLost;
                    }
                    Err(error) => {
                        tracing::warn!(projection = runner.name(), %error, "batch failed; will retry");
                        next_wait = next_wait.min(self.timing.error_backoff);
                    }
                }
            }
            let held_for = hold.after_round(Instant::now(), busy, held);
            if busy {
                // Let the runtime's other tasks (heartbeats) in between batches.
                tokio::task::yield_now().await;
                continue;
            }
            if let Some(held_for) = held_for {
                next_wait = next_wait.min(self.timing.held_back_wait(held_for));
            }
            // Biased: stop first, so a stop is never starved by wake-ups.
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() {
                        // Nobody can tell us to stop any more: stop now.
                        return WorkerExit::Stopped;
                    }
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(next_wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::WorkerTiming;

    #[test]
    fn held_back_waits_grow_with_the_hold_between_retry_and_poll() {
        let timing = WorkerTiming::default();
        let ms = Duration::from_millis;
        assert_eq!(timing.held_back_wait(Duration::ZERO), ms(20));
        assert_eq!(timing.held_back_wait(ms(5)), ms(20));
        assert_eq!(timing.held_back_wait(ms(300)), ms(300));
        assert_eq!(timing.held_back_wait(Duration::from_secs(3600)), ms(1000));
        // Never below the first retry; the loop's own poll interval still
        // caps the wait it sleeps.
        let fast = WorkerTiming {
            poll_interval: ms(10),
            ..timing
        };
        assert_eq!(fast.held_back_wait(ms(500)), ms(20));
    }
}
