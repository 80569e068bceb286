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
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    use NodeRole::{Cold, Demoting, Hot, Stopped};

    /// heartbeat 5 s, ttl 30 s, evict after 5 s: live up to 30 000 ms,
    /// fresh up to 10 000 ms, dead rows listed up to 35 000 ms, stopped rows
    /// up to 5 000 ms.
    fn rules() -> HealthRules {
        HealthRules::new(&LeaseConfig::default())
    }

    fn node(name: &str, role: NodeRole, heartbeat_age_ms: i64) -> NodeView {
        NodeView {
            name: name.to_owned(),
            role,
            epoch: 7,
            heartbeat_age_ms,
        }
    }

    fn view(
        leader: Option<&str>,
        lease_remaining_ms: Option<i64>,
        min: u32,
        nodes: Vec<NodeView>,
    ) -> ClusterView {
        ClusterView {
            cluster: "main".to_owned(),
            epoch: 7,
            leader: leader.map(str::to_owned),
            lease_remaining_ms,
            min_cold_standbys: min,
            timing: Default::default(),
            since_last_failover_ms: None,
            promote: None,
            demote: None,
            nodes,
        }
    }

    #[test]
    fn rules_follow_the_lease_config() {
        assert_eq!(
            HealthRules::new(&LeaseConfig::from_secs(1, 3, 1)),
            HealthRules {
                heartbeat_ms: 1_000,
                lease_ttl_ms: 3_000,
                evict_after_ms: 5_000
            }
        );
    }

    #[test]
    fn a_healthy_cluster_reports_every_field() {
        let v = view(
            Some("a"),
            Some(25_000),
            2,
            // Deliberately out of name order: the report sorts.
            vec![
                node("c", Cold, 4_000),
                node("a", Hot, 1_000),
                node("b", Cold, 2_000),
            ],
        );
        let node_health = |name: &str, role, age, hot, lease| NodeHealth {
            name: name.to_owned(),
            role,
            epoch: 7,
            live: true,
            hot,
            heartbeat_age_ms: age,
            lease_remaining_ms: lease,
        };
        assert_eq!(
            evaluate(&v, &rules()),
            ClusterHealth {
                cluster: "main".to_owned(),
                epoch: 7,
                leader: Some("a".to_owned()),
                lease_remaining_ms: Some(25_000),
                min_cold_standbys: 2,
                timing: Default::default(),
                hot_nodes: 1,
                hot_claims: 1,
                standby_nodes: 2,
                total_nodes: 3,
                healthy: true,
                score: 100,
                nodes: vec![
                    node_health("a", Hot, 1_000, true, Some(25_000)),
                    node_health("b", Cold, 2_000, false, None),
                    node_health("c", Cold, 4_000, false, None),
                ],
            }
        );
    }

    /// The fields a case checks; `listed` is (name, live, hot, lease
    /// remaining) of each reported node in report order.
    #[derive(Debug, PartialEq, Eq)]
    struct Summary {
        hot_nodes: u32,
        hot_claims: u32,
        standby_nodes: u32,
        total_nodes: u32,
        healthy: bool,
        score: u8,
        listed: Vec<(String, bool, bool, Option<i64>)>,
    }

    fn summary(h: &ClusterHealth) -> Summary {
        Summary {
            hot_nodes: h.hot_nodes,
            hot_claims: h.hot_claims,
            standby_nodes: h.standby_nodes,
            total_nodes: h.total_nodes,
            healthy: h.healthy,
            score: h.score,
            listed: h
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.live, n.hot, n.lease_remaining_ms))
                .collect(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn expect(
        hot_nodes: u32,
        hot_claims: u32,
        standby_nodes: u32,
        total_nodes: u32,
        healthy: bool,
        score: u8,
        listed: &[(&str, bool, bool, Option<i64>)],
    ) -> Summary {
        Summary {
            hot_nodes,
            hot_claims,
            standby_nodes,
            total_nodes,
            healthy,
            score,
            listed: listed
                .iter()
                .map(|&(n, live, hot, lease)| (n.to_owned(), live, hot, lease))
                .collect(),
        }
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, ClusterView, Summary)> = vec![
            (
                "healthy, one standby past two heartbeats costs freshness only",
                view(
                    Some("a"),
                    Some(25_000),
                    2,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Cold, 2_000),
                        node("c", Cold, 12_000),
                    ],
                ),
                // 50 + 30 + 20·2/3 = 93.3
                expect(
                    1,
                    1,
                    2,
                    3,
                    true,
                    93,
                    &[
                        ("a", true, true, Some(25_000)),
                        ("b", true, false, None),
                        ("c", true, false, None),
                    ],
                ),
            ),
            (
                "no leader after a release",
                view(
                    None,
                    Some(-3_000),
                    1,
                    vec![node("a", Cold, 1_000), node("b", Cold, 1_000)],
                ),
                expect(
                    0,
                    0,
                    2,
                    2,
                    false,
                    50,
                    &[("a", true, false, None), ("b", true, false, None)],
                ),
            ),
            (
                "leader lease expired: its row still claims hot",
                view(
                    Some("a"),
                    Some(-1),
                    1,
                    vec![node("a", Hot, 1_000), node("b", Cold, 1_000)],
                ),
                expect(
                    0,
                    1,
                    1,
                    2,
                    false,
                    50,
                    &[("a", true, false, Some(-1)), ("b", true, false, None)],
                ),
            ),
            (
                "lease of exactly zero is expired",
                view(
                    Some("a"),
                    Some(0),
                    1,
                    vec![node("a", Hot, 1_000), node("b", Cold, 1_000)],
                ),
                expect(
                    0,
                    1,
                    1,
                    2,
                    false,
                    50,
                    &[("a", true, false, Some(0)), ("b", true, false, None)],
                ),
            ),
            (
                "leader row stale although the cluster lease is valid",
                view(
                    Some("a"),
                    Some(10_000),
                    1,
                    vec![node("a", Hot, 31_000), node("b", Cold, 1_000)],
                ),
                expect(
                    0,
                    0,
                    1,
                    2,
                    false,
                    50,
                    &[("a", false, false, Some(10_000)), ("b", true, false, None)],
                ),
            ),
            (
                "leader without a row",
                view(Some("ghost"), Some(10_000), 1, vec![node("b", Cold, 1_000)]),
                expect(0, 0, 1, 1, false, 50, &[("b", true, false, None)]),
            ),
            (
                "standbys below required",
                view(
                    Some("a"),
                    Some(25_000),
                    3,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Cold, 1_000),
                        node("c", Cold, 1_000),
                    ],
                ),
                // 50 + 30·2/3 + 20
                expect(
                    1,
                    1,
                    2,
                    3,
                    false,
                    90,
                    &[
                        ("a", true, true, Some(25_000)),
                        ("b", true, false, None),
                        ("c", true, false, None),
                    ],
                ),
            ),
            (
                "no standby required",
                view(Some("a"), Some(25_000), 0, vec![node("a", Hot, 1_000)]),
                expect(1, 1, 0, 1, true, 100, &[("a", true, true, Some(25_000))]),
            ),
            (
                "more standbys than required earn no more than full points",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Cold, 1_000),
                        node("c", Cold, 1_000),
                    ],
                ),
                expect(
                    1,
                    1,
                    2,
                    3,
                    true,
                    100,
                    &[
                        ("a", true, true, Some(25_000)),
                        ("b", true, false, None),
                        ("c", true, false, None),
                    ],
                ),
            ),
            (
                "stopped node listed but not counted as standby",
                view(
                    Some("a"),
                    Some(25_000),
                    2,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Stopped, 5_000),
                        node("c", Cold, 1_000),
                    ],
                ),
                // 50 + 30·1/2 + 20·2/2
                expect(
                    1,
                    1,
                    1,
                    3,
                    false,
                    85,
                    &[
                        ("a", true, true, Some(25_000)),
                        ("b", false, false, None),
                        ("c", true, false, None),
                    ],
                ),
            ),
            (
                "stopped node evicted after evict_after_ms",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Stopped, 5_001),
                        node("c", Cold, 1_000),
                    ],
                ),
                expect(
                    1,
                    1,
                    1,
                    2,
                    true,
                    100,
                    &[("a", true, true, Some(25_000)), ("c", true, false, None)],
                ),
            ),
            (
                "demoting node is live but not a standby",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![node("a", Hot, 1_000), node("b", Demoting, 1_000)],
                ),
                expect(
                    1,
                    1,
                    0,
                    2,
                    false,
                    70,
                    &[("a", true, true, Some(25_000)), ("b", true, false, None)],
                ),
            ),
            (
                "live up to the ttl inclusive",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![node("a", Hot, 1_000), node("b", Cold, 30_000)],
                ),
                // 50 + 30 + 20·1/2
                expect(
                    1,
                    1,
                    1,
                    2,
                    true,
                    90,
                    &[("a", true, true, Some(25_000)), ("b", true, false, None)],
                ),
            ),
            (
                "dead node listed up to the threshold",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Cold, 35_000),
                        node("c", Cold, 1_000),
                    ],
                ),
                expect(
                    1,
                    1,
                    1,
                    3,
                    true,
                    100,
                    &[
                        ("a", true, true, Some(25_000)),
                        ("b", false, false, None),
                        ("c", true, false, None),
                    ],
                ),
            ),
            (
                "dead node evicted past the threshold",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Cold, 35_001),
                        node("c", Cold, 1_000),
                    ],
                ),
                expect(
                    1,
                    1,
                    1,
                    2,
                    true,
                    100,
                    &[("a", true, true, Some(25_000)), ("c", true, false, None)],
                ),
            ),
            (
                "two live rows claim hot: surfaced, still healthy",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![
                        node("a", Hot, 1_000),
                        node("b", Hot, 2_000),
                        node("c", Cold, 1_000),
                    ],
                ),
                expect(
                    1,
                    2,
                    1,
                    3,
                    true,
                    100,
                    &[
                        ("a", true, true, Some(25_000)),
                        ("b", true, false, None),
                        ("c", true, false, None),
                    ],
                ),
            ),
            (
                "new leader whose row still says cold is hot, not a standby",
                view(
                    Some("a"),
                    Some(25_000),
                    1,
                    vec![node("a", Cold, 100), node("b", Cold, 1_000)],
                ),
                expect(
                    1,
                    0,
                    1,
                    2,
                    true,
                    100,
                    &[("a", true, true, Some(25_000)), ("b", true, false, None)],
                ),
            ),
            (
                "former leader reporting cold after expiry is a standby",
                view(
                    Some("a"),
                    Some(-5_000),
                    2,
                    vec![node("a", Cold, 100), node("b", Cold, 1_000)],
                ),
                expect(
                    0,
                    0,
                    2,
                    2,
                    false,
                    50,
                    &[("a", true, false, Some(-5_000)), ("b", true, false, None)],
                ),
            ),
            (
                "only dead rows listed: nothing live, nothing fresh",
                view(Some("a"), Some(-31_000), 0, vec![node("a", Hot, 31_000)]),
                // 30 for the (empty) standby requirement, nothing else
                expect(0, 0, 0, 1, false, 30, &[("a", false, false, Some(-31_000))]),
            ),
            (
                "empty cluster",
                view(None, None, 1, vec![]),
                expect(0, 0, 0, 0, false, 0, &[]),
            ),
            (
                "empty cluster scores 0 even with nothing required",
                view(None, None, 0, vec![]),
                expect(0, 0, 0, 0, false, 0, &[]),
            ),
            (
                "every row evicted counts as empty",
                view(
                    Some("a"),
                    Some(-60_000),
                    0,
                    vec![node("a", Hot, 60_000), node("b", Stopped, 60_000)],
                ),
                expect(0, 0, 0, 0, false, 0, &[]),
            ),
        ];
        for (name, v, expected) in cases {
            assert_eq!(summary(&evaluate(&v, &rules())), expected, "case: {name}");
        }
    }

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

    fn role() -> impl Strategy<Value = NodeRole> {
        prop_oneof![Just(Hot), Just(Cold), Just(Demoting), Just(Stopped)]
    }

    fn arb_view() -> impl Strategy<Value = ClusterView> {
        let names = ["a", "b", "c", "d", "e", "f"];
        (
            proptest::collection::btree_map(
                proptest::sample::select(names.to_vec()),
                (role(), 0u64..10, -1_000i64..50_000),
                0..6,
            ),
            proptest::option::of(proptest::sample::select(vec!["a", "b", "c", "ghost"])),
            proptest::option::of(-40_000i64..40_000),
            0u32..4,
        )
            .prop_map(
                |(nodes, leader, remaining, min): (
                    BTreeMap<&str, (NodeRole, u64, i64)>,
                    _,
                    _,
                    _,
                )| {
                    let nodes = nodes
                        .into_iter()
                        .map(|(name, (role, epoch, age))| NodeView {
                            name: name.to_owned(),
                            role,
                            epoch,
                            heartbeat_age_ms: age,
                        })
                        .collect();
                    ClusterView {
                        epoch: 9,
                        ..view(leader, remaining, min, nodes)
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn health_invariants_hold_for_any_view(v in arb_view(), heartbeat in 1i64..10_000, ttl in 1i64..40_000, evict in 0i64..10_000) {
            let rules = HealthRules { heartbeat_ms: heartbeat, lease_ttl_ms: ttl, evict_after_ms: evict };
            let h = evaluate(&v, &rules);
            prop_assert!(h.score <= 100);
            prop_assert!(!h.healthy || h.hot_nodes == 1);
            prop_assert!(h.hot_nodes <= 1);
            prop_assert!(h.standby_nodes <= h.total_nodes);
            prop_assert_eq!(h.total_nodes as usize, h.nodes.len());
            prop_assert_eq!(h.nodes.iter().filter(|n| n.hot).count() as u32, h.hot_nodes);
            prop_assert!(h.nodes.windows(2).all(|w| w[0].name < w[1].name), "nodes sorted by name");
            prop_assert!(h.total_nodes > 0 || h.score == 0);

            // Same input, same output; and the row order of the input does
            // not matter.
            prop_assert_eq!(&evaluate(&v, &rules), &h);
            let mut reversed = v.clone();
            reversed.nodes.reverse();
            prop_assert_eq!(&evaluate(&reversed, &rules), &h);
        }
    }
}
