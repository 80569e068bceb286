//! The metric families the daemons export: the list the other checks use,
//! that list against the source, and every family against what the alerts
//! and the dashboard show.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::alerts::alert_rules;
use crate::dashboard::{dashboard_panels, panel_exprs, DASHBOARD};
use crate::promql::{family_of, metric_refs};
use crate::{json, root};

/// Every metric family a daemon's `/metrics` serves. Kept here so that alerts
/// and dashboard are checked against a list a reviewer can read, and checked
/// itself against the source by `the_exported_list_matches_the_source`.
pub(crate) const EXPORTED: &[&str] = &[
    "daemon_cluster_epoch",
    "daemon_cluster_health_score",
    "daemon_cluster_healthy",
    "daemon_cluster_hot_nodes",
    "daemon_cluster_nodes",
    "daemon_cluster_required_standbys",
    "daemon_cluster_standby_nodes",
    "daemon_node_heartbeat_age_seconds",
    "daemon_node_hot",
    "daemon_node_lease_seconds",
    "rillflow_projection_lag_events",
    "rillflow_projection_checkpoint_position",
    "rillflow_projection_events_processed_total",
    "rillflow_projection_errors_total",
    "rillflow_projection_dead_lettered_total",
    "rillflow_projection_last_processed_timestamp_seconds",
    "rillflow_projection_paused",
    "rillflow_projection_dead_letters",
    "rillflow_projection_batch_duration_seconds",
    "rillflow_projection_batch_failures_total",
    "rillflow_projection_partitions_owned",
    "rillflow_projection_rebalances_total",
    "rillflow_projection_unowned_partitions",
    "rillflow_projection_unowned_partition_seconds_total",
    "archive_streams_marked_total",
    "archive_streams_reactivated_total",
    "archive_events_moved_total",
    "archive_move_batches_total",
    "archive_move_duration_seconds",
    "archive_events_hot_bytes",
    "archive_streams_awaiting_move",
    "rillflow_health_view_age_seconds",
    "rillflow_health_refresh_failures_total",
    "rillflow_log_divergences_total",
    "rillflow_replica_lag_bytes",
    "rillflow_replica_lag_seconds",
    "rillflow_replica_replay_paused",
    "rillflow_replica_read_conflicts_total",
];

/// Families exported as histograms: queried through their `_bucket`, `_sum`
/// and `_count` series, never by the bare name.
pub(crate) const HISTOGRAMS: &[&str] = &[
    "rillflow_projection_batch_duration_seconds",
    "archive_move_duration_seconds",
];

/// Families each process counts for itself (batches, and how fresh its own
/// copy of the database's figures is). Every other family is computed from
/// the database, so all daemons report the same value and a `sum` over
/// scraped pods multiplies it by the pod count.
pub(crate) const PROCESS_LOCAL: &[&str] = &[
    "rillflow_projection_batch_duration_seconds",
    "rillflow_projection_batch_failures_total",
    "rillflow_health_view_age_seconds",
    "rillflow_health_refresh_failures_total",
    "rillflow_log_divergences_total",
    "rillflow_replica_lag_bytes",
    "rillflow_replica_lag_seconds",
    "rillflow_replica_replay_paused",
    "rillflow_replica_read_conflicts_total",
];

/// Where the metric names are defined: the health server's families, the
/// projection runtime's own batch metrics and the daemon's history watch.
const METRIC_SOURCES: &[&str] = &[
    "adapters/src/health",
    "adapters/src/projection/metrics.rs",
    "adapters/src/daemon/history_watch.rs",
    "adapters/src/replica/lag_watch.rs",
];

/// String literals in Rust source that look like metric names: an opening
/// quote, a known prefix, lower-case letters and underscores, a closing quote.
fn quoted_metric_names(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["\"daemon_", "\"archive_", "\"rillflow_"] {
        for (at, _) in source.match_indices(prefix) {
            let body = &source[at + 1..];
            let Some(end) = body.find('"') else { continue };
            let name = &body[..end];
            if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_exported_list_matches_the_source() {
    let mut found = BTreeSet::new();
    for rel in METRIC_SOURCES {
        let path = root().join(rel);
        let files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .expect("metric source directory")
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect()
        } else {
            vec![path]
        };
        assert!(!files.is_empty(), "{rel}: no sources");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Metric families are defined through the prometheus crate; other
            // files (the JSON health and diagnostic documents) have keys that
            // merely look like metric names.
            if text.contains("prometheus") {
                found.extend(quoted_metric_names(&text));
            }
        }
    }
    let listed: BTreeSet<String> = EXPORTED.iter().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = found.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&found).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "EXPORTED has drifted from the source: exported but not listed {missing:?}, \
         listed but not exported {stale:?}"
    );
    assert_eq!(listed.len(), EXPORTED.len(), "EXPORTED has duplicates");
    for h in HISTOGRAMS.iter().chain(PROCESS_LOCAL) {
        assert!(EXPORTED.contains(h), "{h} is not in EXPORTED");
    }
}

#[test]
fn every_exported_metric_is_alerted_on_or_shown() {
    let mut used = BTreeSet::new();
    for rule in alert_rules() {
        for (m, _) in metric_refs(rule["expr"].as_str().unwrap()) {
            used.insert(family_of(&m).unwrap());
        }
    }
    for (_, p) in dashboard_panels(&json(DASHBOARD)) {
        for expr in panel_exprs(&p) {
            for (m, _) in metric_refs(&expr) {
                used.insert(family_of(&m).unwrap());
            }
        }
    }
    let unused: Vec<&&str> = EXPORTED.iter().filter(|m| !used.contains(**m)).collect();
    assert!(
        unused.is_empty(),
        "exported but neither alerted on nor on the dashboard: {unused:?}"
    );
}
