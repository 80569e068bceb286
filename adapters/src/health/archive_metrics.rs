//! The `archive_*` metrics, from the database's archive counters.

use prometheus::proto::{Bucket, Histogram, Metric, MetricFamily, MetricType};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::archive::{ArchiveStats, TenantArchiveStats};

/// Adds the archive counters and gauges to `registry`. With conjoined
/// tenants, the per-stream figures are split by a `tenant` label, the
/// untenanted remainder under `tenant=""` (the same series as no label), so
/// a sum over the family is still the total.
pub fn add_archive(registry: &Registry, stats: &ArchiveStats) {
    let tenants = &stats.tenants;
    let counter = |name: &str, help: &str, total: u64, share: fn(&TenantArchiveStats) -> u64| {
        if tenants.is_empty() {
            let c = IntCounter::new(name, help).expect("valid metric definition");
            c.inc_by(total);
            registry
                .register(Box::new(c))
                .expect("metric registered once");
            return;
        }
        let c = IntCounterVec::new(Opts::new(name, help), &["tenant"])
            .expect("valid metric definition");
        let mut rest = total;
        for t in tenants {
            c.with_label_values(&[t.tenant.as_str()]).inc_by(share(t));
            rest = rest.saturating_sub(share(t));
        }
        c.with_label_values(&[""]).inc_by(rest);
        registry
            .register(Box::new(c))
            .expect("metric registered once");
    };
    counter(
        "archive_streams_marked_total",
        "Streams marked archived",
        stats.streams_marked,
        |t| t.streams_marked,
    );
    counter(
        "archive_streams_reactivated_total",
        "Archived streams reactivated",
        stats.streams_reactivated,
        |t| t.streams_reactivated,
    );
    counter(
        "archive_events_moved_total",
        "Events the mover moved to cold storage",
        stats.events_moved,
        |t| t.events_moved,
    );
    // Batches and sizes belong to the shared tables, not to a tenant.
    let batches = IntCounter::new(
        "archive_move_batches_total",
        "Mover batches (one transaction each)",
    )
    .expect("valid metric definition");
    batches.inc_by(stats.move_batches);
    registry
        .register(Box::new(batches))
        .expect("metric registered once");
    let hot = IntGauge::new(
        "archive_events_hot_bytes",
        "Bytes of hot event storage, indexes included",
    )
    .expect("valid metric definition");
    hot.set(stats.events_hot_bytes);
    registry
        .register(Box::new(hot))
        .expect("metric registered once");
    let awaiting = IntGaugeVec::new(
        Opts::new(
            "archive_streams_awaiting_move",
            "Archived streams with events still in hot storage (the mover's backlog)",
        ),
        if tenants.is_empty() { &[] } else { &["tenant"] },
    )
    .expect("valid metric definition");
    if tenants.is_empty() {
        awaiting
            .with_label_values(&[] as &[&str])
            .set(stats.streams_awaiting_move);
    } else {
        let mut rest = stats.streams_awaiting_move;
        for t in tenants {
            awaiting
                .with_label_values(&[t.tenant.as_str()])
                .set(t.streams_awaiting_move);
            rest -= t.streams_awaiting_move;
        }
        awaiting.with_label_values(&[""]).set(rest.max(0));
    }
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
