//! The alerting rules and the dashboard's queries, run through `promtool`
//! where it is installed.

use std::process::Command;

use crate::alerts::ALERTS;
use crate::dashboard::{dashboard_panels, panel_exprs, DASHBOARD};
use crate::{json, root, scratch, which};

/// Scenarios for `promtool test rules`: series as three pods scrape them,
/// and the alerts that must (and must not) fire. Written beside a copy of
/// the rules at test time.
const PROMTOOL_TESTS: &str = include_str!("data/rillflow-alerts.test.yml");

#[test]
fn promtool_accepts_the_rules_and_they_fire_as_intended() {
    let Some(promtool) = which("promtool") else {
        eprintln!(
            "note: promtool not found; skipped `promtool check rules` and the rule unit tests \
             (apt-get install prometheus provides it)"
        );
        return;
    };
    let dir = scratch("promtool");
    std::fs::copy(root().join(ALERTS), dir.join("rillflow-alerts.yml")).unwrap();
    std::fs::write(dir.join("rillflow-alerts.test.yml"), PROMTOOL_TESTS).unwrap();
    for args in [
        ["check", "rules", "rillflow-alerts.yml"],
        ["test", "rules", "rillflow-alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn promtool_parses_the_dashboard_queries() {
    let Some(promtool) = which("promtool") else {
        eprintln!("note: promtool not found; dashboard queries not parsed");
        return;
    };
    // Grafana's variables replaced by what they stand for, each query a
    // recording rule, so promtool parses every one of them.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, p)) in dashboard_panels(&json(DASHBOARD)).iter().enumerate() {
        for (j, expr) in panel_exprs(p).iter().enumerate() {
            let promql = expr
                .replace("$__rate_interval", "5m")
                .replace("$cluster", ".*")
                .replace("$projection", ".*");
            rules.push_str(&format!(
                "      - record: dashboard:panel_{i}:{j}\n        expr: '{}'\n",
                promql.replace('\'', "''")
            ));
        }
    }
    let dir = scratch("dashboard-queries");
    std::fs::write(dir.join("queries.yml"), &rules).unwrap();
    let out = Command::new(&promtool)
        .args(["check", "rules", "queries.yml"])
        .current_dir(&dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules on the dashboard's queries:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
