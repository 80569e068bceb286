//! The `archive_*` metrics, from the database's archive counters.

use prometheus::proto::{Bucket, Histogram, Metric, MetricFamily, MetricType};
use prometheus::{IntCounter, IntGauge, Registry};

use crate::archive::ArchiveStats;

/// Adds the archive counters and the hot storage gauge to `registry`.
pub fn add_archive(registry: &Registry, stats: &ArchiveStats) {
    let counter = |name: &str, help: &str, value: u64| {
        let c = IntCounter::new(name, help).expect("valid metric definition");
        c.inc_by(value);
        registry
            .register(Box::new(c))
            .expect("metric registered once");
    };
    counter(
        "archive_streams_marked_total",
        "Streams marked archived",
        stats.streams_marked,
    );
    counter(
        "archive_streams_reactivated_total",
        "Archived streams reactivated",
        stats.streams_reactivated,
    );
    counter(
        "archive_events_moved_total",
        "Events the mover moved to cold storage",
        stats.events_moved,
    );
    counter(
        "archive_move_batches_total",
        "Mover batches (one transaction each)",
        stats.move_batches,
    );
    let hot = IntGauge::new(
        "archive_events_hot_bytes",
        "Bytes of hot event storage, indexes included",
    )
    .expect("valid metric definition");
    hot.set(stats.events_hot_bytes);
    registry
        .register(Box::new(hot))
        .expect("metric registered once");
    let awaiting = IntGauge::new(
        "archive_streams_awaiting_move",
        "Archived streams with events still in hot storage (the mover's backlog)",
    )
    .expect("valid metric definition");
    awaiting.set(stats.streams_awaiting_move);
    registry
        .register(Box::new(awaiting))
        .expect("metric registered once");
}

/// `archive_move_duration_seconds`, rebuilt from the stored buckets: a
/// registry histogram only counts what this process observed, and the
/// batches may have run in any process.
pub fn move_duration_family(stats: &ArchiveStats) -> MetricFamily {
    let mut cumulative = 0u64;
    let mut buckets = Vec::with_capacity(stats.move_seconds_bounds.len());
    for (bound, count) in stats
        .move_seconds_bounds
        .iter()
        .zip(&stats.move_seconds_buckets)
    {
        cumulative += count;
        let mut b = Bucket::default();
        b.set_upper_bound(*bound);
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    let total: u64 = stats.move_seconds_buckets.iter().sum();
    let mut histogram = Histogram::default();
    histogram.set_sample_count(total);
    histogram.set_sample_sum(stats.move_seconds_sum);
    histogram.set_bucket(buckets);
    let mut metric = Metric::default();
    metric.set_histogram(histogram);
    let mut family = MetricFamily::default();
    family.set_name("archive_move_duration_seconds".to_owned());
    family.set_help("Duration of mover batches (database clock)".to_owned());
    family.set_field_type(MetricType::HISTOGRAM);
    family.set_metric(vec![metric]);
    family
}
