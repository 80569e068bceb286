//! The Grafana dashboard: well formed, on exported metrics filtered by its
//! variables, and each row showing what it is for.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::json;
use crate::promql::{family_of, metric_refs, sums_over_pods};

pub(crate) const DASHBOARD: &str = "deploy/grafana/rillflow-dashboard.json";

/// (row title, panel) for every panel, in order.
pub(crate) fn dashboard_panels(d: &Value) -> Vec<(String, Value)> {
    let mut row = String::new();
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            row = p["title"].as_str().expect("row title").to_owned();
            for nested in p["panels"].as_array().into_iter().flatten() {
                out.push((row.clone(), nested.clone()));
            }
        } else {
            out.push((row.clone(), p.clone()));
        }
    }
    out
}

pub(crate) fn panel_exprs(panel: &Value) -> Vec<String> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["expr"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = json(DASHBOARD);
    let schema = d["schemaVersion"].as_i64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "uid");
    assert!(d["title"].as_str().is_some(), "title");

    let vars = d["templating"]["list"].as_array().expect("templating");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for (name, metric) in [
        ("cluster", "daemon_cluster_"),
        ("projection", "rillflow_projection_"),
    ] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        let q = v["query"]["query"]
            .as_str()
            .or_else(|| v["query"].as_str())
            .unwrap_or_else(|| panic!("{name}: no query"));
        assert!(
            q.starts_with("label_values(") && q.contains(metric),
            "{name}: {q}"
        );
        for (m, _) in metric_refs(q) {
            family_of(&m).unwrap_or_else(|e| panic!("variable {name}: {e}"));
        }
    }

    let rows: Vec<String> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect();
    let want = [
        "Cluster",
        "Projections",
        "Ownership",
        "Archive",
        "Read standby",
    ];
    assert_eq!(rows.len(), want.len(), "rows {rows:?}");
    for (row, w) in rows.iter().zip(want) {
        assert!(row.starts_with(w), "rows {rows:?}, expected {want:?}");
    }

    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(i64, i64, i64, i64, String)> = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap_or("?").to_owned();
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "panel id of {title} twice"
        );
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            g[k].as_i64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(w > 0 && h > 0 && x >= 0 && x + w <= 24, "{title}: gridPos");
        for (ox, oy, ow, oh, other) in &boxes {
            let apart = x + w <= *ox || *ox + ow <= x || y + h <= *oy || *oy + oh <= y;
            assert!(apart, "panels {title} and {other} overlap");
        }
        boxes.push((x, y, w, h, title));
    }

    for (_, p) in dashboard_panels(&d) {
        let title = p["title"].as_str().unwrap_or("?");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{title}: empty expr"
            );
        }
    }
}

#[test]
fn the_dashboard_uses_exported_metrics_filtered_by_its_variables() {
    let d = json(DASHBOARD);
    for (_, p) in dashboard_panels(&d) {
        let title = p["title"].as_str().unwrap_or("?");
        for expr in panel_exprs(&p) {
            let refs = metric_refs(&expr);
            assert!(!refs.is_empty(), "{title}: {expr} uses no rillflow metric");
            for (m, end) in refs {
                let family = family_of(&m).unwrap_or_else(|e| panic!("{title}: {e}"));
                // Selectors follow the $cluster / $projection variables.
                let wanted = if family.starts_with("daemon_") {
                    Some(r#"cluster=~"$cluster""#)
                } else if family.starts_with("rillflow_projection_") {
                    Some(r#"projection=~"$projection""#)
                } else {
                    None
                };
                if let Some(wanted) = wanted {
                    let selector = expr[end..]
                        .strip_prefix('{')
                        .and_then(|s| s.split_once('}'))
                        .map(|(s, _)| s)
                        .unwrap_or_else(|| panic!("{title}: {m} has no label selector"));
                    assert!(
                        selector.contains(wanted),
                        "{title}: {m} is not filtered by {wanted}"
                    );
                }
            }
            let problems = sums_over_pods(&expr);
            assert!(problems.is_empty(), "{title}: {problems:?}");
        }
    }
}

#[test]
fn each_dashboard_row_shows_what_it_is_for() {
    let d = json(DASHBOARD);
    let mut by_row: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (row, p) in dashboard_panels(&d) {
        let key = row.split_whitespace().next().unwrap_or_default().to_owned();
        for expr in panel_exprs(&p) {
            for (m, _) in metric_refs(&expr) {
                by_row
                    .entry(key.clone())
                    .or_default()
                    .insert(family_of(&m).unwrap());
            }
        }
    }
    let want: [(&str, &[&str]); 4] = [
        (
            "Cluster",
            &[
                "daemon_cluster_healthy",
                "daemon_node_hot",
                "daemon_cluster_standby_nodes",
                "daemon_cluster_required_standbys",
                "daemon_cluster_epoch",
                "daemon_node_heartbeat_age_seconds",
                "daemon_cluster_health_score",
            ],
        ),
        (
            "Projections",
            &[
                "rillflow_projection_lag_events",
                "rillflow_projection_events_processed_total",
                "rillflow_projection_errors_total",
                "rillflow_projection_dead_letters",
                "rillflow_projection_batch_duration_seconds",
                "rillflow_projection_paused",
            ],
        ),
        (
            "Ownership",
            &[
                "rillflow_projection_partitions_owned",
                "rillflow_projection_unowned_partitions",
                "rillflow_projection_rebalances_total",
            ],
        ),
        (
            "Archive",
            &[
                "archive_events_moved_total",
                "archive_move_batches_total",
                "archive_move_duration_seconds",
                "archive_events_hot_bytes",
            ],
        ),
    ];
    for (row, metrics) in want {
        let shown = by_row.get(row).cloned().unwrap_or_default();
        for m in metrics {
            assert!(shown.contains(m), "row {row} does not show {m}");
        }
    }
}
