//! The Prometheus alerting rules: complete, covering what they must, on
//! exported metrics, and aggregated without counting a pod twice.

use std::collections::BTreeSet;

use yaml_rust2::Yaml;

use crate::promql::{family_of, metric_refs, sums_over_pods};
use crate::{seconds, yaml};

pub(crate) const ALERTS: &str = "deploy/prometheus/rillflow-alerts.yml";

/// Every alerting rule of the rules file.
pub(crate) fn alert_rules() -> Vec<Yaml> {
    let docs = yaml(ALERTS);
    assert_eq!(docs.len(), 1, "{ALERTS}: one document");
    let groups = docs[0]["groups"].as_vec().expect("groups");
    assert!(!groups.is_empty(), "no groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_vec().expect("rules of a group").clone())
        .collect()
}

#[test]
fn every_alert_rule_is_complete() {
    let docs = yaml(ALERTS);
    let mut groups = BTreeSet::new();
    for g in docs[0]["groups"].as_vec().unwrap() {
        let name = g["name"].as_str().expect("group name");
        assert!(groups.insert(name.to_owned()), "group {name} twice");
        assert!(
            !g["rules"].as_vec().expect("rules").is_empty(),
            "group {name} is empty"
        );
    }
    let mut names = BTreeSet::new();
    for rule in alert_rules() {
        let name = rule["alert"].as_str().unwrap_or_else(|| {
            panic!("a rule without `alert` (recording rules go elsewhere): {rule:?}")
        });
        assert!(names.insert(name.to_owned()), "alert {name} twice");
        assert!(
            rule["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "{name}: no expr"
        );
        let hold = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no `for` (write `0m` to fire at once)"));
        seconds(hold);
        let severity = rule["labels"]["severity"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no labels.severity"));
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        assert!(
            rule["labels"]["component"].as_str().is_some(),
            "{name}: no labels.component"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name}: no annotations.{key}"
            );
        }
    }
    // What issue 9 asks the rules to cover, by metric.
    let exprs: String = alert_rules()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "daemon_cluster_healthy",
        "daemon_cluster_standby_nodes",
        "daemon_cluster_required_standbys",
        "daemon_node_heartbeat_age_seconds",
        "daemon_cluster_hot_nodes",
        "rillflow_projection_lag_events",
        "rillflow_projection_dead_lettered_total",
        "rillflow_projection_paused",
        "archive_events_moved_total",
        "rillflow_projection_unowned_partitions",
        "rillflow_projection_rebalances_total",
    ] {
        assert!(
            metric_refs(&exprs).iter().any(|(m, _)| m == needed),
            "no alert uses {needed}"
        );
    }
}

#[test]
fn alerts_use_exported_metrics_and_deduplicate_pods() {
    for rule in alert_rules() {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        let refs = metric_refs(expr);
        assert!(!refs.is_empty(), "{name}: uses no rillflow metric");
        for (m, _) in refs {
            if let Err(e) = family_of(&m) {
                panic!("{name}: {e}");
            }
        }
        let problems = sums_over_pods(expr);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}
