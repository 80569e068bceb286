//! Cluster health from the database's rows: flags, scores, eviction.

use proptest::prelude::*;
use rillflow_core::lease::health::*;
use rillflow_core::lease::*;
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
        lease_session: None,
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
            lease_binding: "ttl",
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
            |(nodes, leader, remaining, min): (BTreeMap<&str, (NodeRole, u64, i64)>, _, _, _)| {
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

proptest! {
    /// The reasons account for exactly what the score lost: the score is
    /// 100 minus their points, rounded down once.
    #[test]
    fn deductions_account_for_the_score(v in arb_view()) {
        let h = evaluate(&v, &HealthRules::for_timing(&v.timing));
        let lost: f64 = deductions(&h).iter().map(|d| d.points).sum();
        let expected = (100.0 - lost + 1e-9).floor().max(0.0);
        prop_assert_eq!(f64::from(h.score), expected, "{:?}", deductions(&h));
        prop_assert_eq!(h.score == 100, deductions(&h).is_empty());
    }
}

#[test]
fn deductions_name_what_is_missing() {
    let v = view(
        Some("a"),
        Some(-2_000),
        2,
        vec![
            node("a", Hot, 31_000),
            node("b", Cold, 12_000),
            node("c", Cold, 1_000),
        ],
    );
    let h = evaluate(&v, &rules());
    let d = deductions(&h);
    let reasons: Vec<&str> = d.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec![
            "no hot node: the lease of a expired and nobody took it over yet",
            "heartbeats older than two intervals (10000 ms) from: b",
        ],
        "b and c are the two standbys; b is live but late"
    );
    assert_eq!(d[1].points, 10.0);
    assert_eq!(h.score, 40);
}
