//! Just enough PromQL reading for the alert and dashboard checks: which
//! metrics an expression uses, which exported family a series belongs to,
//! and which `sum`s add up the pods' identical series.

use crate::metrics::{EXPORTED, HISTOGRAMS, PROCESS_LOCAL};
use crate::seconds;

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The rillflow metric identifiers in a PromQL expression with where each
/// ends, as written (histogram suffixes kept). Quoted strings (label values,
/// Grafana variables inside them) are skipped.
pub(crate) fn metric_refs(expr: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = expr.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i].1 != c {
                if chars[i].1 == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if is_ident(c) && !c.is_ascii_digit() {
            let start = at;
            while i < chars.len() && is_ident(chars[i].1) {
                i += 1;
            }
            let end = chars.get(i).map_or(expr.len(), |(p, _)| *p);
            let word = &expr[start..end];
            if ["daemon_", "archive_", "rillflow_"]
                .iter()
                .any(|p| word.starts_with(p))
            {
                out.push((word.to_owned(), end));
            }
            continue;
        }
        i += 1;
    }
    out
}

/// The exported family a series name belongs to, or why it does not.
pub(crate) fn family_of(series: &str) -> Result<&'static str, String> {
    if let Some(f) = EXPORTED.iter().find(|f| **f == series) {
        if HISTOGRAMS.contains(f) {
            return Err(format!(
                "{series} is a histogram: query its _bucket, _sum or _count series"
            ));
        }
        return Ok(f);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if let Some(f) = HISTOGRAMS.iter().find(|f| **f == base) {
                return Ok(f);
            }
        }
    }
    Err(format!("{series} is not a metric the daemons export"))
}

/// `text` from just after an opening parenthesis at its start to the
/// matching closing one.
fn parenthesised(text: &str) -> &str {
    assert!(text.starts_with('('));
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text:?}")
}

/// The `sum` aggregations of `expr` that add up a database-wide metric
/// without deduplicating the pods' identical series first (an inner `max`).
pub(crate) fn sums_over_pods(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut from = 0;
    while let Some(off) = expr[from..].find("sum") {
        let at = from + off;
        from = at + 3;
        let before = expr[..at].chars().next_back();
        let after = expr[at + 3..].chars().next();
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            continue; // sum_over_time, a metric name, ...
        }
        let mut rest = expr[at + 3..].trim_start();
        for clause in ["by", "without"] {
            if let Some(r) = rest.strip_prefix(clause) {
                let r = r.trim_start();
                if r.starts_with('(') {
                    let labels = parenthesised(r);
                    rest = r[labels.len() + 2..].trim_start();
                }
            }
        }
        if !rest.starts_with('(') {
            continue;
        }
        let arg = parenthesised(rest);
        if arg.trim_start().starts_with("max") {
            continue;
        }
        let shared: Vec<String> = metric_refs(arg)
            .into_iter()
            .filter_map(|(m, _)| family_of(&m).ok())
            .filter(|f| !PROCESS_LOCAL.contains(f))
            .map(str::to_owned)
            .collect();
        if !shared.is_empty() {
            problems.push(format!(
                "sum over {shared:?} adds up identical series of every pod; take max per series first"
            ));
        }
    }
    problems
}

#[test]
fn the_promql_helpers_catch_what_they_should() {
    // The checks below are only as good as these helpers.
    let refs: Vec<String> = metric_refs(
        r#"sum by (p) (max by (p, q) (rate(rillflow_projection_errors_total{projection=~"rillflow_x"}[5m])))"#,
    )
    .into_iter()
    .map(|(m, _)| m)
    .collect();
    assert_eq!(refs, ["rillflow_projection_errors_total"]);
    assert_eq!(
        family_of("archive_move_duration_seconds_bucket"),
        Ok("archive_move_duration_seconds")
    );
    assert!(family_of("archive_move_duration_seconds").is_err());
    assert!(family_of("rillflow_projection_lag_events_bucket").is_err());
    assert!(family_of("daemon_cluster_leader").is_err());
    assert_eq!(
        sums_over_pods("sum by (projection) (rillflow_projection_lag_events)").len(),
        1
    );
    assert_eq!(
        sums_over_pods("sum(rate(archive_events_moved_total[5m]))").len(),
        1
    );
    assert!(sums_over_pods(
        "sum by (projection) (max by (projection, partition) (rillflow_projection_lag_events))"
    )
    .is_empty());
    assert!(sums_over_pods(
        "sum by (projection, le) (rate(rillflow_projection_batch_duration_seconds_bucket[5m]))"
    )
    .is_empty());
    assert!(sums_over_pods("sum_over_time(rillflow_projection_paused[5m])").is_empty());
    assert_eq!(seconds("1min 30s"), 90.0);
    assert_eq!(seconds("45"), 45.0);
    assert_eq!(seconds("1m30s"), 90.0);
}
