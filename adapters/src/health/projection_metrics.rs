//! The `rillflow_projection_*` metrics, from the database's checkpoint rows.

use prometheus::{CounterVec, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::projection::ProjectionStatus;

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

/// Adds every projection's figures to `registry`, one series per partition
/// (and per projection for the projection-wide ones).
pub fn add_projections(registry: &Registry, projections: &[ProjectionStatus]) {
    let by_partition = ["projection", "partition"];
    let gauge = |name: &str, help: &str, labels: &[&str]| {
        register(
            registry,
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition"),
        )
    };
    let counter = |name: &str, help: &str| {
        register(
            registry,
            IntCounterVec::new(Opts::new(name, help), &by_partition)
                .expect("valid metric definition"),
        )
    };
    let lag = gauge(
        "rillflow_projection_lag_events",
        "Events committed after the partition's checkpoint",
        &by_partition,
    );
    let position = gauge(
        "rillflow_projection_checkpoint_position",
        "Global position of the last event the partition passed",
        &by_partition,
    );
    let processed = counter(
        "rillflow_projection_events_processed_total",
        "Events applied by the partition's handler since start or rebuild",
    );
    let errors = counter(
        "rillflow_projection_errors_total",
        "Handler failures, retried ones included",
    );
    let dead_lettered = counter(
        "rillflow_projection_dead_lettered_total",
        "Events sent to the dead-letter table",
    );
    let last = register(
        registry,
        GaugeVec::new(
            Opts::new(
                "rillflow_projection_last_processed_timestamp_seconds",
                "Unix time the partition last applied an event (database clock)",
            ),
            &by_partition,
        )
        .expect("valid metric definition"),
    );
    let paused = gauge(
        "rillflow_projection_paused",
        "1 while the projection is paused (by an operator or the stop policy)",
        &["projection"],
    );
    let dead_letters = gauge(
        "rillflow_projection_dead_letters",
        "Rows in the dead-letter table now",
        &["projection"],
    );
    for p in projections {
        paused
            .with_label_values(&[p.name.as_str()])
            .set(i64::from(p.paused));
        dead_letters
            .with_label_values(&[p.name.as_str()])
            .set(p.dead_letters);
        for part in &p.partitions {
            let key = part.partition.to_string();
            let l = [p.name.as_str(), key.as_str()];
            lag.with_label_values(&l).set(part.lag);
            position.with_label_values(&l).set(part.position);
            processed
                .with_label_values(&l)
                .inc_by(part.processed_total.max(0) as u64);
            errors
                .with_label_values(&l)
                .inc_by(part.errors_total.max(0) as u64);
            dead_lettered
                .with_label_values(&l)
                .inc_by(part.dead_lettered_total.max(0) as u64);
            if let Some(at) = part.last_processed_at {
                last.with_label_values(&l)
                    .set(at.timestamp_millis() as f64 / 1000.0);
            }
        }
    }
    add_ownership(registry, projections);
}

/// The dynamic-ownership families, for projections that use it only: a
/// static deployment has no leases, and would otherwise show every
/// partition as unowned.
fn add_ownership(registry: &Registry, projections: &[ProjectionStatus]) {
    let dynamic: Vec<&ProjectionStatus> =
        projections.iter().filter(|p| p.ownership.dynamic).collect();
    if dynamic.is_empty() {
        return;
    }
    let owned = register(
        registry,
        IntGaugeVec::new(
            Opts::new(
                "rillflow_projection_partitions_owned",
                "Partitions each live worker holds a lease on now",
            ),
            &["projection", "worker"],
        )
        .expect("valid metric definition"),
    );
    let rebalances = register(
        registry,
        IntCounterVec::new(
            Opts::new(
                "rillflow_projection_rebalances_total",
                "Partition leases granted: every move of a partition to a worker",
            ),
            &["projection"],
        )
        .expect("valid metric definition"),
    );
    let unowned = register(
        registry,
        IntGaugeVec::new(
            Opts::new(
                "rillflow_projection_unowned_partitions",
                "Partitions with no live lease now",
            ),
            &["projection"],
        )
        .expect("valid metric definition"),
    );
    let unowned_secs = register(
        registry,
        CounterVec::new(
            Opts::new(
                "rillflow_projection_unowned_partition_seconds_total",
                "Seconds partitions spent without an owner, summed (database clock)",
            ),
            &["projection"],
        )
        .expect("valid metric definition"),
    );
    for p in dynamic {
        let name = [p.name.as_str()];
        for w in &p.ownership.workers {
            owned
                .with_label_values(&[p.name.as_str(), w.worker.as_str()])
                .set(w.partitions_owned);
        }
        rebalances
            .with_label_values(&name)
            .inc_by(p.ownership.rebalances_total.max(0) as u64);
        unowned
            .with_label_values(&name)
            .set(p.ownership.unowned_partitions);
        unowned_secs
            .with_label_values(&name)
            .inc_by(p.ownership.unowned_seconds_total.max(0.0));
    }
}
