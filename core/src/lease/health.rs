//! Cluster health as the database sees it (OPS-2).
//!
//! [`evaluate`] is a pure function of one [`ClusterView`]: every count comes
//! from the cluster and node rows, never from what one process believes about
//! itself, so every node (and the CLI) reports the same health for the same
//! view. Ages and remaining times are database-clock milliseconds (LEASE-2).

use std::time::Duration;

use super::config::LeaseConfig;
use super::view::{ClusterTiming, ClusterView, NodeRole, NodeView};

/// How long a node that is no longer live stays in the report, in
/// milliseconds: long enough for an operator to see that it went away, short
/// enough that a dead node does not linger as if it mattered (LEASE-5).
pub const DEFAULT_EVICT_AFTER_MS: i64 = 5_000;

/// The thresholds health is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    /// Interval between heartbeats; a node more than two behind is stale.
    pub heartbeat_ms: i64,
    /// A node whose last heartbeat is older than this is not live: its lease
    /// (if it had one) can have expired.
    pub lease_ttl_ms: i64,
    /// How long a node that is not live is still listed (see [`evaluate`]).
    pub evict_after_ms: i64,
}

impl HealthRules {
    /// Rules matching the timing the daemons run with.
    pub fn new(cfg: &LeaseConfig) -> Self {
        HealthRules::for_timing(&ClusterTiming::from(cfg))
    }

    /// Rules for the timing a cluster row records.
    pub fn for_timing(timing: &ClusterTiming) -> Self {
        HealthRules {
            heartbeat_ms: timing.heartbeat_ms,
            lease_ttl_ms: timing.lease_ttl_ms,
            evict_after_ms: DEFAULT_EVICT_AFTER_MS,
        }
    }

    /// Running, and heard from recently enough that any lease it holds can
    /// still be valid.
    fn is_live(&self, n: &NodeView) -> bool {
        n.role != NodeRole::Stopped && n.heartbeat_age_ms <= self.lease_ttl_ms
    }

    /// Dropped from the report. A dead node goes `evict_after_ms` after its
    /// lease could have expired; a stopped node announced its exit with its
    /// last heartbeat and held no lease, so it goes `evict_after_ms` after it.
    fn is_evicted(&self, n: &NodeView) -> bool {
        if self.is_live(n) {
            return false;
        }
        let after = match n.role {
            NodeRole::Stopped => self.evict_after_ms,
            _ => self.lease_ttl_ms.saturating_add(self.evict_after_ms),
        };
        n.heartbeat_age_ms > after
    }

    /// Recent enough to count as fresh for the score: at most two heartbeats
    /// behind, so one late heartbeat does not cost points.
    fn is_fresh(&self, n: &NodeView) -> bool {
        n.heartbeat_age_ms <= self.heartbeat_ms.saturating_mul(2)
    }
}

/// A duration in whole milliseconds, saturating rather than wrapping for
/// durations no configuration would use.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One cluster's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Cluster name.
    pub cluster: String,
    /// Fencing epoch of the current (or last) grant.
    pub epoch: u64,
    /// Holder of the current (or last) grant, valid or not.
    pub leader: Option<String>,
    /// Lease time left by the database clock (negative: expired that long
    /// ago); None when no lease was ever granted.
    pub lease_remaining_ms: Option<i64>,
    /// Standbys the operator wants online.
    pub min_cold_standbys: u32,
    /// The timing the cluster's daemons run with.
    pub timing: ClusterTiming,
    /// What the current lease is bound to: "session" (its holder's
    /// session is open), "session-ended", "ttl" (granted without a
    /// session), or "none" (no leader).
    pub lease_binding: &'static str,
    /// 1 when the leader holds a valid lease and its row is live, else 0.
    pub hot_nodes: u32,
    /// Live rows whose role says hot. More than one means stale rows (a
    /// former leader that has not reported its demotion yet): surfaced, but
    /// not unhealthy by itself, since fencing decides who writes.
    pub hot_claims: u32,
    /// Live cold nodes other than the hot node.
    pub standby_nodes: u32,
    /// Nodes reported (not evicted).
    pub total_nodes: u32,
    /// Exactly one hot node and at least `min_cold_standbys` standbys.
    pub healthy: bool,
    /// 0 to 100; see [`evaluate`].
    pub score: u8,
    /// Reported nodes, sorted by name.
    pub nodes: Vec<NodeHealth>,
}

/// One node's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    /// Node name.
    pub name: String,
    /// The role it last reported.
    pub role: NodeRole,
    /// The epoch it last reported.
    pub epoch: u64,
    /// Not stopped, and heard from within the lease ttl.
    pub live: bool,
    /// The cluster's hot node: it holds the valid lease and its row is live.
    pub hot: bool,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
    /// The cluster's lease time left, on the row the cluster names as leader
    /// (negative once expired); None on every other row.
    pub lease_remaining_ms: Option<i64>,
}

/// Judges a cluster's health from the database's view of it.
///
/// - A node is *live* when its role is not stopped and its heartbeat is at
///   most `lease_ttl_ms` old.
/// - A node that is not live is *evicted* (left out entirely) once its
///   heartbeat is older than `lease_ttl_ms + evict_after_ms`, or, for a
///   stopped node, older than `evict_after_ms`.
/// - The *hot node* is the cluster's leader when it holds a valid lease and
///   its row is live; a valid lease on a row that stopped reporting does not
///   count, because nobody is known to be using it.
/// - *Standbys* are live cold nodes other than the hot node. A former leader
///   whose lease expired and which now reports cold is a standby again.
///
/// The score, rounded down once at the end, is
///
/// ```text
/// 50 × [exactly one hot node]
/// + 30 × min(standbys, required) / required     (30 when required is 0)
/// + 20 × fresh / live                           (0 when no node is live)
/// ```
///
/// where *fresh* counts live nodes whose heartbeat is at most two heartbeats
/// old. A cluster with no reported node scores 0 whatever its settings.
pub fn evaluate(view: &ClusterView, rules: &HealthRules) -> ClusterHealth {
    let mut reported: Vec<&NodeView> = view.nodes.iter().filter(|n| !rules.is_evicted(n)).collect();
    // Stable sort: the output order depends on names only, not on how the
    // caller happened to order the rows.
    reported.sort_by(|a, b| a.name.cmp(&b.name));

    let hot = view.leader.as_deref().filter(|leader| {
        view.holds_valid_lease(leader) && view.node(leader).is_some_and(|n| rules.is_live(n))
    });
    let is_hot = |n: &NodeView| hot == Some(n.name.as_str());

    let live: Vec<&NodeView> = reported
        .iter()
        .copied()
        .filter(|n| rules.is_live(n))
        .collect();
    let hot_claims = count(live.iter().filter(|n| n.role == NodeRole::Hot));
    let standby_nodes = count(
        live.iter()
            .filter(|n| n.role == NodeRole::Cold && !is_hot(n)),
    );
    let fresh = count(live.iter().filter(|n| rules.is_fresh(n)));
    let hot_nodes = u32::from(hot.is_some());
    let total_nodes = count(reported.iter());

    let nodes = reported
        .iter()
        .map(|n| NodeHealth {
            name: n.name.clone(),
            role: n.role,
            epoch: n.epoch,
            live: rules.is_live(n),
            hot: is_hot(n),
            heartbeat_age_ms: n.heartbeat_age_ms,
            lease_remaining_ms: view
                .lease_remaining_ms
                .filter(|_| view.leader.as_deref() == Some(n.name.as_str())),
        })
        .collect();

    ClusterHealth {
        cluster: view.cluster.clone(),
        epoch: view.epoch,
        leader: view.leader.clone(),
        lease_remaining_ms: view.lease_remaining_ms,
        min_cold_standbys: view.min_cold_standbys,
        timing: view.timing,
        lease_binding: match (&view.leader, view.lease_session) {
            (None, _) => "none",
            (Some(_), None) => "ttl",
            (Some(_), Some(s)) if s.alive => "session",
            (Some(_), Some(_)) => "session-ended",
        },
        hot_nodes,
        hot_claims,
        standby_nodes,
        total_nodes,
        healthy: hot_nodes == 1 && standby_nodes >= view.min_cold_standbys,
        score: score(
            hot_nodes == 1,
            standby_nodes,
            view.min_cold_standbys,
            fresh,
            count(live.iter()),
            total_nodes,
        ),
        nodes,
    }
}

/// The score formula of [`evaluate`], in exact integer arithmetic so that
/// every node computes the same value bit for bit.
fn score(one_hot: bool, standbys: u32, required: u32, fresh: u32, live: u32, total: u32) -> u8 {
    if total == 0 {
        return 0;
    }
    // Each fraction as (numerator, denominator) with a non-zero denominator.
    let (standby_num, standby_den) = match required {
        0 => (1, 1),
        r => (u128::from(standbys.min(r)), u128::from(r)),
    };
    let (fresh_num, fresh_den) = match live {
        0 => (0, 1),
        l => (u128::from(fresh.min(l)), u128::from(l)),
    };
    // 50·h + 30·s/sd + 20·f/fd over the common denominator sd·fd; u128
    // because sd·fd alone can reach 2^64.
    let den = standby_den * fresh_den;
    let num = 50 * u128::from(one_hot) * den
        + 30 * standby_num * fresh_den
        + 20 * fresh_num * standby_den;
    u8::try_from(num / den).expect("each fraction is at most 1, so the score is at most 100")
}

/// Counts for the report; no cluster has 2^32 nodes, but input from the
/// database must not be able to cause a panic.
fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn score_rounds_down_once() {
        // 30·3/7 + 20·4/7 = 24.29 → 24; flooring each part first would give
        // 12 + 11 = 23.
        assert_eq!(score(false, 3, 7, 4, 7, 7), 24);
        // 50 + 30·1/3 + 20·2/3 = 73.33 → 73.
        assert_eq!(score(true, 1, 3, 2, 3, 3), 73);
        // Extremes neither overflow nor exceed 100.
        assert_eq!(
            score(true, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX),
            100
        );
        assert_eq!(score(true, 0, 0, 0, 0, 0), 0);
    }
}
