//! Cluster views for the failover rule tests (lease_failover*.rs): one
//! place that says what the rows look like, so each table reads as cases.
#![allow(dead_code)] // each test file uses its own subset

use rillflow_core::lease::failover::FailoverRules;
use rillflow_core::lease::*;

/// heartbeat 5 s, ttl 30 s, grace 5 s, failover interval 30 s: live up to
/// 30 000 ms, lagging past 10 000 ms, the candidate alone may try from
/// 5 001 ms free, everyone from 15 001 ms free.
pub fn rules() -> FailoverRules {
    FailoverRules::new(&LeaseConfig::default())
}

pub fn node(name: &str, role: NodeRole, heartbeat_age_ms: i64) -> NodeView {
    NodeView {
        name: name.to_owned(),
        role,
        epoch: 3,
        heartbeat_age_ms,
    }
}

pub fn view(
    leader: Option<&str>,
    lease_remaining_ms: Option<i64>,
    nodes: Vec<NodeView>,
) -> ClusterView {
    ClusterView {
        cluster: "main".to_owned(),
        epoch: 3,
        leader: leader.map(str::to_owned),
        lease_remaining_ms,
        min_cold_standbys: 1,
        timing: Default::default(),
        since_last_failover_ms: None,
        promote: None,
        demote: None,
        nodes,
        lease_session: None,
    }
}

pub fn promote(mut v: ClusterView, node: &str) -> ClusterView {
    v.promote = Some(PromoteRequest {
        node: node.to_owned(),
        force: false,
    });
    v
}

pub fn since_failover(mut v: ClusterView, ms: i64) -> ClusterView {
    v.since_last_failover_ms = Some(ms);
    v
}

pub fn demote(mut v: ClusterView, node: &str) -> ClusterView {
    v.demote = Some(node.to_owned());
    v
}

pub fn session(mut v: ClusterView, alive: bool) -> ClusterView {
    v.lease_session = Some(LeaseSession { key: 42, alive });
    v
}
