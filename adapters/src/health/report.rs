//! The JSON health document served on `GET /`.

use rillflow_core::lease::health::ClusterHealth;
use serde_json::{json, Value};

use crate::projection::ProjectionStatus;

/// The `hotcold` section: every cluster as the database sees it.
pub fn hotcold(clusters: &[ClusterHealth]) -> Value {
    let clusters: Vec<Value> = clusters
        .iter()
        .map(|c| {
            let nodes: Vec<Value> = c
                .nodes
                .iter()
                .map(|n| {
                    json!({
                        "name": n.name,
                        "role": n.role.as_str(),
                        "epoch": n.epoch,
                        "live": n.live,
                        "hot": n.hot,
                        "heartbeat_age_ms": n.heartbeat_age_ms,
                        "lease_expires_in_ms": n.lease_remaining_ms,
                    })
                })
                .collect();
            json!({
                "cluster": c.cluster,
                "healthy": c.healthy,
                "score": c.score,
                "epoch": c.epoch,
                "leader": c.leader,
                "lease_expires_in_ms": c.lease_remaining_ms,
                "lease_binding": c.lease_binding,
                "min_cold_standbys": c.min_cold_standbys,
                "heartbeat_ms": c.timing.heartbeat_ms,
                "lease_ttl_ms": c.timing.lease_ttl_ms,
                "lease_grace_ms": c.timing.lease_grace_ms,
                "hot_nodes": c.hot_nodes,
                "hot_claims": c.hot_claims,
                "standby_nodes": c.standby_nodes,
                "nodes_total": c.total_nodes,
                "nodes": nodes,
            })
        })
        .collect();
    json!({ "clusters": clusters })
}

/// The `projections` section: each projection's lag and state.
pub fn projections(projections: &[ProjectionStatus], max_lag: i64) -> Value {
    let list: Vec<Value> = projections
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "lag": p.lag(),
                "lag_exact": p.lag_exact(),
                "lagging": p.lag() > max_lag,
                "paused": p.paused,
                "stopped_reason": p.stopped_reason,
                "partitions": p.total_partitions,
                "processed_total": p.processed_total(),
                "errors_total": p.errors_total(),
                "dead_letters": p.dead_letters,
                "last_error": p.last_error(),
            })
        })
        .collect();
    json!({ "max_lag": max_lag, "projections": list })
}

/// The whole document: overall status, this process, the clusters and the
/// projections. `unhealthy` when a projection lags beyond `max_lag` (the
/// server then answers 503); `degraded` when a cluster is unhealthy.
pub fn document(
    local: Value,
    clusters: &[ClusterHealth],
    projection_list: &[ProjectionStatus],
    max_lag: i64,
) -> Value {
    let lagging = projection_list.iter().any(|p| p.lag() > max_lag);
    let status = if lagging {
        "unhealthy"
    } else if clusters.iter().all(|c| c.healthy) {
        "ok"
    } else {
        "degraded"
    };
    json!({
        "status": status,
        "node": local,
        "hotcold": hotcold(clusters),
        "projections": projections(projection_list, max_lag),
    })
}

/// The document when the database could not be read.
pub fn failure(local: Value, error: &str) -> Value {
    json!({ "status": "error", "error": error, "node": local })
}
