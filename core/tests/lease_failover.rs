//! Failover rules, table by table: who competes, who steps down, which
//! promotions the CLI accepts. Properties are in lease_failover_props.rs,
//! leases bound to a session in lease_failover_sessions.rs.

mod failover_views;

use failover_views::*;
use rillflow_core::lease::failover::*;
use rillflow_core::lease::*;

use NodeRole::{Cold, Demoting, Hot, Stopped};

#[test]
fn rules_follow_the_lease_config() {
    assert_eq!(
        FailoverRules::new(&LeaseConfig::from_secs(1, 3, 2)),
        FailoverRules {
            heartbeat_ms: 1_000,
            lease_ttl_ms: 3_000,
            lease_grace_ms: 2_000,
            min_failover_interval_ms: 3_000
        }
    );
}

#[test]
fn choose_candidate_table() {
    let cases: Vec<(&str, ClusterView, Option<&str>)> = vec![
        ("no nodes", view(None, None, vec![]), None),
        (
            "freshest heartbeat",
            view(
                None,
                None,
                vec![node("b", Cold, 3_000), node("c", Cold, 1_000)],
            ),
            Some("c"),
        ),
        (
            "tie broken by name",
            view(
                None,
                None,
                vec![
                    node("c", Cold, 1_000),
                    node("b", Cold, 1_000),
                    node("d", Cold, 1_000),
                ],
            ),
            Some("b"),
        ),
        (
            "negative ages are the freshest",
            view(None, None, vec![node("b", Cold, 0), node("c", Cold, -5)]),
            Some("c"),
        ),
        (
            "valid leader excluded even when its row still says cold",
            view(
                Some("a"),
                Some(1),
                vec![node("a", Cold, 100), node("b", Cold, 2_000)],
            ),
            Some("b"),
        ),
        (
            "expired leader reporting cold is eligible",
            view(
                Some("a"),
                Some(-1),
                vec![node("a", Cold, 100), node("b", Cold, 2_000)],
            ),
            Some("a"),
        ),
        (
            "only cold roles",
            view(
                None,
                None,
                vec![
                    node("a", Hot, 100),
                    node("b", Demoting, 100),
                    node("c", Stopped, 100),
                    node("d", Cold, 5_000),
                ],
            ),
            Some("d"),
        ),
        (
            "live up to the ttl inclusive",
            view(
                None,
                None,
                vec![node("a", Cold, 30_001), node("b", Cold, 30_000)],
            ),
            Some("b"),
        ),
        (
            "nobody live",
            view(
                None,
                None,
                vec![node("a", Cold, 30_001), node("b", Stopped, 0)],
            ),
            None,
        ),
        (
            "promote target wins over a fresher node",
            promote(
                view(
                    None,
                    None,
                    vec![node("b", Cold, 100), node("c", Cold, 2_000)],
                ),
                "c",
            ),
            Some("c"),
        ),
        (
            "dead promote target ignored",
            promote(
                view(
                    None,
                    None,
                    vec![node("b", Cold, 100), node("c", Cold, 40_000)],
                ),
                "c",
            ),
            Some("b"),
        ),
        (
            "promote target that is not cold ignored",
            promote(
                view(
                    None,
                    None,
                    vec![node("b", Cold, 100), node("c", Demoting, 50)],
                ),
                "c",
            ),
            Some("b"),
        ),
        (
            "unknown promote target ignored",
            promote(view(None, None, vec![node("b", Cold, 100)]), "zz"),
            Some("b"),
        ),
        (
            "promote target holding the valid lease ignored",
            promote(
                view(
                    Some("a"),
                    Some(1),
                    vec![node("a", Cold, 100), node("b", Cold, 2_000)],
                ),
                "a",
            ),
            Some("b"),
        ),
    ];
    for (name, v, expected) in cases {
        assert_eq!(
            choose_candidate(&v, &rules()).map(|n| n.name.as_str()),
            expected,
            "case: {name}"
        );
    }
}

#[test]
fn lease_free_for_table() {
    // (case, leader, lease remaining, expected free for)
    type Case = (&'static str, Option<&'static str>, Option<i64>, Option<i64>);
    let cases: Vec<Case> = vec![
        ("never granted", None, None, Some(i64::MAX)),
        ("valid", Some("a"), Some(1), None),
        ("expires right now", Some("a"), Some(0), Some(0)),
        ("expired", Some("a"), Some(-7_000), Some(7_000)),
        ("released", None, Some(-2_500), Some(2_500)),
        (
            "released with expiry ahead counts as just freed",
            None,
            Some(400),
            Some(0),
        ),
        (
            "leader without an expiry was never validly granted",
            Some("a"),
            None,
            Some(i64::MAX),
        ),
        (
            "far past saturates",
            Some("a"),
            Some(i64::MIN),
            Some(i64::MAX),
        ),
    ];
    for (name, leader, remaining, expected) in cases {
        assert_eq!(
            lease_free_for_ms(&view(leader, remaining, vec![])),
            expected,
            "case: {name}"
        );
    }
}

/// Leader `a` died (row stale); `b` is the freshest standby, `c` the
/// other one. The lease has been free for `free_ms`.
fn after_crash(free_ms: i64) -> ClusterView {
    view(
        Some("a"),
        Some(-free_ms),
        vec![
            node("a", Hot, 40_000),
            node("b", Cold, 1_000),
            node("c", Cold, 2_000),
        ],
    )
}

#[test]
fn should_try_acquire_table() {
    let live = vec![
        node("a", Hot, 1_000),
        node("b", Cold, 1_000),
        node("c", Cold, 2_000),
    ];
    let cases: Vec<(&str, ClusterView, [bool; 2])> = vec![
        // [b, c]
        (
            "valid lease",
            view(Some("a"), Some(20_000), live.clone()),
            [false, false],
        ),
        (
            "free for exactly the grace",
            after_crash(5_000),
            [false, false],
        ),
        (
            "free past the grace: the candidate only",
            after_crash(5_001),
            [true, false],
        ),
        (
            "free for exactly grace + 2 heartbeats: still the candidate only",
            after_crash(15_000),
            [true, false],
        ),
        (
            "free past grace + 2 heartbeats: everyone",
            after_crash(15_001),
            [true, true],
        ),
        (
            "interval not yet passed (LEASE-4)",
            since_failover(after_crash(20_000), 29_999),
            [false, false],
        ),
        (
            "interval passed",
            since_failover(after_crash(20_000), 30_000),
            [true, true],
        ),
        (
            "release: free at once for every standby",
            view(None, Some(-5), live.clone()),
            [true, true],
        ),
        (
            "release is a handoff, exempt from the interval",
            since_failover(view(None, Some(-5), live.clone()), 0),
            [true, true],
        ),
        (
            "handoff to a promote target: the others wait the ttl",
            promote(view(None, Some(-29_999), live.clone()), "c"),
            [false, true],
        ),
        (
            "handoff target had the ttl: the others join",
            promote(view(None, Some(-30_000), live.clone()), "c"),
            [true, true],
        ),
        (
            "never granted: everyone, the database picks",
            view(None, None, live.clone()),
            [true, true],
        ),
        (
            "promote names me while the lease is valid",
            promote(view(Some("a"), Some(20_000), live.clone()), "c"),
            [false, true],
        ),
        (
            "promote names me while the failover interval runs",
            promote(since_failover(after_crash(100), 0), "c"),
            [false, true],
        ),
        (
            "promote names another live node: it gets the ttl",
            promote(after_crash(29_999), "c"),
            [false, true],
        ),
        (
            "promote target had the ttl: the others join",
            promote(after_crash(30_000), "c"),
            [true, true],
        ),
        (
            "promote names a dead node: normal failover",
            promote(
                view(
                    Some("a"),
                    Some(-5_001),
                    vec![node("b", Cold, 1_000), node("c", Cold, 31_000)],
                ),
                "c",
            ),
            [true, false],
        ),
        (
            "promote names an unknown node: normal failover",
            promote(after_crash(5_001), "zz"),
            [true, false],
        ),
    ];
    for (name, v, [b, c]) in cases {
        assert_eq!(
            [
                should_try_acquire(&v, "b", &rules()),
                should_try_acquire(&v, "c", &rules())
            ],
            [b, c],
            "case: {name}"
        );
    }
}

#[test]
fn only_live_standbys_try() {
    let free = |me: NodeView| view(None, None, vec![me]);
    assert!(should_try_acquire(
        &free(node("m", Cold, 30_000)),
        "m",
        &rules()
    ));
    assert!(
        !should_try_acquire(&free(node("m", Cold, 30_001)), "m", &rules()),
        "stale row"
    );
    assert!(!should_try_acquire(
        &free(node("m", Stopped, 0)),
        "m",
        &rules()
    ));
    assert!(!should_try_acquire(
        &free(node("m", Demoting, 0)),
        "m",
        &rules()
    ));
    assert!(!should_try_acquire(&free(node("m", Hot, 0)), "m", &rules()));
    assert!(
        !should_try_acquire(&free(node("x", Cold, 0)), "m", &rules()),
        "no row of my own"
    );
    let dead_target = promote(
        view(Some("a"), Some(20_000), vec![node("m", Cold, 30_001)]),
        "m",
    );
    assert!(
        !should_try_acquire(&dead_target, "m", &rules()),
        "promoted but not live"
    );
}

#[test]
fn should_step_down_table() {
    let hot = || {
        view(
            Some("a"),
            Some(20_000),
            vec![
                node("a", Hot, 100),
                node("b", Cold, 1_000),
                node("s", Stopped, 0),
            ],
        )
    };
    let cases: Vec<(&str, ClusterView, Option<StepDown>)> = vec![
        ("still the leader", hot(), None),
        ("demoted", demote(hot(), "a"), Some(StepDown::Demoted)),
        ("another node demoted", demote(hot(), "b"), None),
        (
            "promote of a live standby",
            promote(hot(), "b"),
            Some(StepDown::Handoff { to: "b".to_owned() }),
        ),
        ("promote of me", promote(hot(), "a"), None),
        ("promote of a stopped node", promote(hot(), "s"), None),
        ("promote of an unknown node", promote(hot(), "zz"), None),
        (
            "promote of a node that died since",
            promote(
                view(
                    Some("a"),
                    Some(20_000),
                    vec![node("a", Hot, 100), node("b", Cold, 30_001)],
                ),
                "b",
            ),
            None,
        ),
        (
            "another leader",
            view(Some("b"), Some(20_000), vec![node("a", Hot, 100)]),
            Some(StepDown::Superseded),
        ),
        (
            "another leader wins over a demote request",
            demote(
                view(Some("b"), Some(20_000), vec![node("a", Hot, 100)]),
                "a",
            ),
            Some(StepDown::Superseded),
        ),
        (
            "demote wins over a promote request",
            promote(demote(hot(), "a"), "b"),
            Some(StepDown::Demoted),
        ),
        (
            "released: no leader named",
            view(None, Some(-1), vec![node("a", Hot, 100)]),
            None,
        ),
    ];
    for (name, v, expected) in cases {
        assert_eq!(
            should_step_down(&v, "a", &rules()),
            expected,
            "case: {name}"
        );
    }
}

#[test]
fn check_promote_table() {
    let v = view(
        Some("a"),
        Some(12_000),
        vec![
            node("a", Hot, 100),
            node("fresh", Cold, 10_000),
            node("lagging", Cold, 10_001),
            node("dead", Cold, 30_001),
            node("stopped", Stopped, 0),
            node("demoting", Demoting, 100),
        ],
    );
    let lagging = PromoteRefusal::Lagging {
        node: "lagging".to_owned(),
        heartbeat_age_ms: 10_001,
        limit_ms: 10_000,
    };
    let unhealthy = PromoteRefusal::Unhealthy {
        node: "dead".to_owned(),
        heartbeat_age_ms: 30_001,
        lease_ttl_ms: 30_000,
    };
    let already_hot = PromoteRefusal::AlreadyHot {
        node: "a".to_owned(),
        epoch: 3,
        lease_remaining_ms: 12_000,
    };
    let cases: Vec<(&str, bool, Result<(), PromoteRefusal>)> = vec![
        (
            "zz",
            false,
            Err(PromoteRefusal::UnknownNode {
                cluster: "main".to_owned(),
                node: "zz".to_owned(),
            }),
        ),
        (
            "stopped",
            false,
            Err(PromoteRefusal::Stopped {
                node: "stopped".to_owned(),
            }),
        ),
        (
            "stopped",
            true,
            Err(PromoteRefusal::Stopped {
                node: "stopped".to_owned(),
            }),
        ),
        ("a", false, Err(already_hot.clone())),
        ("a", true, Err(already_hot)),
        ("dead", false, Err(unhealthy.clone())),
        ("dead", true, Err(unhealthy)),
        ("lagging", false, Err(lagging)),
        ("lagging", true, Ok(())),
        ("fresh", false, Ok(())),
        ("demoting", false, Ok(())),
    ];
    for (target, force, expected) in cases {
        assert_eq!(
            check_promote(&v, target, force, &rules()),
            expected,
            "target {target}, force {force}"
        );
    }
    let expired = view(Some("a"), Some(-1), vec![node("a", Hot, 100)]);
    assert_eq!(
        check_promote(&expired, "a", false, &rules()),
        Ok(()),
        "an expired leader may be promoted again"
    );
}

#[test]
fn refusals_read_as_one_clear_line() {
    let cases = [
        (
            PromoteRefusal::UnknownNode {
                cluster: "main".into(),
                node: "zz".into(),
            },
            r#"node "zz" is not a member of cluster "main""#,
        ),
        (
            PromoteRefusal::Stopped { node: "n".into() },
            r#"node "n" is stopped"#,
        ),
        (
            PromoteRefusal::AlreadyHot {
                node: "n".into(),
                epoch: 4,
                lease_remaining_ms: 900,
            },
            r#"node "n" is already hot (epoch 4, 900 ms of lease left)"#,
        ),
        (
            PromoteRefusal::Unhealthy {
                node: "n".into(),
                heartbeat_age_ms: 31_000,
                lease_ttl_ms: 30_000,
            },
            r#"node "n" last heartbeat was 31000 ms ago, more than the lease ttl of 30000 ms; it is not running"#,
        ),
        (
            PromoteRefusal::Lagging {
                node: "n".into(),
                heartbeat_age_ms: 12_000,
                limit_ms: 10_000,
            },
            r#"node "n" last heartbeat was 12000 ms ago, more than two heartbeats (10000 ms); use --force to promote it anyway"#,
        ),
    ];
    for (refusal, text) in cases {
        assert_eq!(refusal.to_string(), text);
    }
}
