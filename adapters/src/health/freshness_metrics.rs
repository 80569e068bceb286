//! The `rillflow_health_*` metrics: how old the figures a process serves
//! are, and how often it failed to refresh them.

use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

use super::view::Freshness;

/// One family per metric with a `view` series each. Process-local: each
/// daemon refreshes its own views, so these are the exception to "every
/// pod reports the same value".
pub fn freshness_families(views: &[(&str, Freshness, u64)]) -> Vec<MetricFamily> {
    let registry = Registry::new();
    let age = GaugeVec::new(
        Opts::new(
            "rillflow_health_view_age_seconds",
            "Age of the figures this process serves for the view (since it started, when never read)",
        ),
        &["view"],
    )
    .expect("valid metric definition");
    let failures = IntCounterVec::new(
        Opts::new(
            "rillflow_health_refresh_failures_total",
            "Refreshes of the view that failed or timed out in this process",
        ),
        &["view"],
    )
    .expect("valid metric definition");
    for (name, freshness, failed) in views {
        age.with_label_values(&[name])
            .set(freshness.age.as_secs_f64());
        failures.with_label_values(&[name]).inc_by(*failed);
    }
    registry
        .register(Box::new(age))
        .expect("metric registered once");
    registry
        .register(Box::new(failures))
        .expect("metric registered once");
    registry.gather()
}
