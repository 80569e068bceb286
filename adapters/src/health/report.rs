//! The JSON health document served on `GET /`.

use rillflow_core::lease::health::ClusterHealth;
use serde_json::{json, Value};

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

/// The whole document: overall status, this process, and the clusters.
pub fn document(local: Value, clusters: Result<&[ClusterHealth], &str>) -> Value {
    match clusters {
        Ok(clusters) => {
            let healthy = clusters.iter().all(|c| c.healthy);
            json!({
                "status": if healthy { "ok" } else { "degraded" },
                "node": local,
                "hotcold": hotcold(clusters),
            })
        }
        Err(error) => json!({ "status": "error", "error": error, "node": local }),
    }
}
