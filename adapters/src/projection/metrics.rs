//! What only the running process knows: how long its batches take.
//!
//! Everything else about a projection (lag, totals, errors, dead letters) is
//! read from the database at scrape time, so every node reports the same
//! figures whichever process happens to be answering.

use std::time::Duration;

use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::batch_error::BatchError;
use super::runner::BatchOutcome;
use rillflow_core::PartitionSpec;

/// Batch timings and failures of this process.
pub struct RuntimeMetrics {
    registry: Registry,
    batch_duration: HistogramVec,
    batch_failures: IntCounterVec,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeMetrics {
    /// Empty metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let batch_duration = HistogramVec::new(
            HistogramOpts::new(
                "rillflow_projection_batch_duration_seconds",
                "Wall time of projection batches that applied events, in this process",
            )
            .buckets(vec![
                // Up to the default statement timeout (30 s): a batch that
                // slow is the one an operator needs to see in a bucket.
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["projection", "partition"],
        )
        .expect("valid metric definition");
        let batch_failures = IntCounterVec::new(
            Opts::new(
                "rillflow_projection_batch_failures_total",
                "Batches that could not run (database failure, timeout, fenced), in this process",
            ),
            &["projection", "partition"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(batch_duration.clone()))
            .expect("metric registered once");
        registry
            .register(Box::new(batch_failures.clone()))
            .expect("metric registered once");
        RuntimeMetrics {
            registry,
            batch_duration,
            batch_failures,
        }
    }

    /// Records one batch of `projection`'s `partition`.
    pub fn observe(
        &self,
        projection: &str,
        partition: PartitionSpec,
        took: Duration,
        outcome: &Result<BatchOutcome, BatchError>,
    ) {
        let partition = partition.key().to_string();
        let labels = [projection, partition.as_str()];
        match outcome {
            Ok(BatchOutcome::Applied { .. }) => self
                .batch_duration
                .with_label_values(&labels)
                .observe(took.as_secs_f64()),
            Ok(_) => {}
            Err(_) => self.batch_failures.with_label_values(&labels).inc(),
        }
    }

    /// The families to expose next to the database's figures.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}
