//! Failover policy: who competes for a free lease, when the hot node steps
//! down, and which manual promotions the CLI accepts.
//!
//! Every rule is a pure function of the database's [`ClusterView`], so every
//! node that reads the same view reaches the same decision. The database
//! still arbitrates: these rules only keep nodes from racing needlessly and
//! keep failovers from flapping (LEASE-4); fencing keeps writes safe whatever
//! they decide (LEASE-1).

use super::config::LeaseConfig;
use super::health::millis;
use super::view::{ClusterTiming, ClusterView, NodeRole, NodeView};

/// The timing failover decisions are judged by, in database-clock
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverRules {
    /// Interval between heartbeats.
    pub heartbeat_ms: i64,
    /// Lease length; a node silent for longer is not live.
    pub lease_ttl_ms: i64,
    /// How long a lease stays free before standbys compete for it, so a slow
    /// renewal is not mistaken for a dead leader.
    pub lease_grace_ms: i64,
    /// Least time between two automatic failovers (LEASE-4).
    pub min_failover_interval_ms: i64,
}

impl FailoverRules {
    /// Rules matching the timing the daemons run with.
    pub fn new(cfg: &LeaseConfig) -> Self {
        FailoverRules {
            heartbeat_ms: millis(cfg.heartbeat),
            lease_ttl_ms: millis(cfg.lease_ttl),
            lease_grace_ms: millis(cfg.lease_grace),
            min_failover_interval_ms: millis(cfg.min_failover_interval),
        }
    }

    /// Rules for the timing a cluster row records, with the run-loop's
    /// failover interval of one lease ttl.
    pub fn for_timing(timing: &ClusterTiming) -> Self {
        FailoverRules {
            heartbeat_ms: timing.heartbeat_ms,
            lease_ttl_ms: timing.lease_ttl_ms,
            lease_grace_ms: timing.lease_grace_ms,
            min_failover_interval_ms: timing.lease_ttl_ms,
        }
    }

    /// A standby that can take the lease: it reports cold and was heard from
    /// within the lease ttl.
    fn is_live_standby(&self, n: &NodeView) -> bool {
        n.role == NodeRole::Cold && n.heartbeat_age_ms <= self.lease_ttl_ms
    }

    /// The row of `name` when it is a live standby.
    fn live_standby<'a>(&self, view: &'a ClusterView, name: &str) -> Option<&'a NodeView> {
        view.node(name).filter(|n| self.is_live_standby(n))
    }

    /// Two heartbeats: a node further behind is lagging.
    fn lag_limit_ms(&self) -> i64 {
        self.heartbeat_ms.saturating_mul(2)
    }
}

/// The standby that should take a free lease.
///
/// Among live standbys that do not hold the valid lease: the one a pending
/// promote request names, else the freshest heartbeat, ties broken by name
/// ascending. The choice depends on the view only (not on row order), so every
/// node that reads the same view picks the same candidate.
pub fn choose_candidate<'a>(view: &'a ClusterView, rules: &FailoverRules) -> Option<&'a NodeView> {
    let eligible = |n: &&NodeView| rules.is_live_standby(n) && !view.holds_valid_lease(&n.name);
    if let Some(promote) = &view.promote {
        if let Some(target) = view
            .nodes
            .iter()
            .filter(eligible)
            .find(|n| n.name == promote.node)
        {
            return Some(target);
        }
    }
    view.nodes.iter().filter(eligible).min_by(|a, b| {
        a.heartbeat_age_ms
            .cmp(&b.heartbeat_age_ms)
            .then_with(|| a.name.cmp(&b.name))
    })
}

/// How long the lease has been free, in milliseconds: None while a valid
/// lease exists, `i64::MAX` when none was ever granted.
///
/// A release keeps the expiry, set to the release time, so a released lease
/// is measured the same way as an expired one. A released lease whose expiry
/// still lies ahead (which the schema does not produce) counts as just freed.
pub fn lease_free_for_ms(view: &ClusterView) -> Option<i64> {
    match (view.leader.as_deref(), view.lease_remaining_ms) {
        (_, None) => Some(i64::MAX),
        (Some(_), Some(remaining)) if remaining > 0 => None,
        (_, Some(remaining)) => Some(remaining.saturating_neg().max(0)),
    }
}

/// Whether the standby `me` should ask the database for the lease now.
///
/// - A promote request naming `me`, while `me` is a live standby: yes, even
///   while the lease is valid, because the hot node is handing it over.
/// - A promote request naming another live standby while the lease has been
///   free for less than `lease_ttl_ms`: no, the target gets its chance first.
/// - A released lease (no leader named), or one never granted: yes, at once.
///   Its holder stopped before releasing, so there is no writer to wait out
///   and the database grants it without grace; waiting would break the
///   one-second takeover after a graceful stop (LEASE-3). A release is a
///   handoff, not a failover, so the failover interval does not apply. Every
///   live standby tries (the one that just released is held off by its own
///   machine) and the database grants one.
/// - A lost lease (its holder stopped renewing): only once it has been free
///   for more than `lease_grace_ms`, and only when the last automatic
///   failover was at least `min_failover_interval_ms` ago (LEASE-4). Then the
///   [`choose_candidate`] tries first, and everyone else joins once the lease
///   has been free for more than `lease_grace_ms + 2 × heartbeat_ms`, so a
///   candidate that cannot act does not block the cluster (LEASE-3).
///
/// `me` must itself be a live standby in the view.
pub fn should_try_acquire(view: &ClusterView, me: &str, rules: &FailoverRules) -> bool {
    if rules.live_standby(view, me).is_none() {
        return false;
    }
    let promote_target = view.promote.as_ref().map(|p| p.node.as_str());
    if promote_target == Some(me) {
        return true;
    }
    let Some(free_for) = lease_free_for_ms(view) else {
        return false;
    };
    let promoting_other =
        promote_target.is_some_and(|target| rules.live_standby(view, target).is_some());
    if promoting_other && free_for < rules.lease_ttl_ms {
        return false;
    }
    if view.leader.is_none() {
        return true;
    }
    let interval_passed = view
        .since_last_failover_ms
        .is_none_or(|ms| ms >= rules.min_failover_interval_ms);
    if free_for <= rules.lease_grace_ms || !interval_passed {
        return false;
    }
    let chosen = choose_candidate(view, rules).is_some_and(|c| c.name == me);
    chosen || free_for > rules.lease_grace_ms.saturating_add(rules.lag_limit_ms())
}

/// Why the hot node should give up running projections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDown {
    /// An operator asked this node to demote: stop, then release.
    Demoted,
    /// An operator asked to promote `to`, a live standby: stop, then release
    /// so it can take the lease at once.
    Handoff {
        /// The node being promoted.
        to: String,
    },
    /// The database names another leader: this node's lease is gone, stop at
    /// once (there is nothing left to release).
    Superseded,
}

/// Whether the hot node `me` should step down, judged from a view.
///
/// Superseded wins over the operator's requests: when another node already
/// holds the grant, stopping at once matters more than a graceful release.
/// A promotion hands over only to a live standby, so a request naming a node
/// that died after it was made cannot make the hot node release again and
/// again (LEASE-4).
pub fn should_step_down(view: &ClusterView, me: &str, rules: &FailoverRules) -> Option<StepDown> {
    if view.leader.as_deref().is_some_and(|leader| leader != me) {
        return Some(StepDown::Superseded);
    }
    if view.demote.as_deref() == Some(me) {
        return Some(StepDown::Demoted);
    }
    let target = view
        .promote
        .as_ref()
        .map(|p| p.node.as_str())
        .filter(|&target| target != me)?;
    rules
        .live_standby(view, target)
        .map(|n| StepDown::Handoff { to: n.name.clone() })
}

/// Why the CLI refuses a manual promotion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoteRefusal {
    /// The cluster has no row for the node.
    #[error("node {node:?} is not a member of cluster {cluster:?}")]
    UnknownNode {
        /// The cluster.
        cluster: String,
        /// The node asked for.
        node: String,
    },
    /// The node shut down cleanly and is not running.
    #[error("node {node:?} is stopped")]
    Stopped {
        /// The node asked for.
        node: String,
    },
    /// The node already holds the valid lease.
    #[error("node {node:?} is already hot (epoch {epoch}, {lease_remaining_ms} ms of lease left)")]
    AlreadyHot {
        /// The node asked for.
        node: String,
        /// The epoch of its lease.
        epoch: u64,
        /// Lease time left by the database clock.
        lease_remaining_ms: i64,
    },
    /// The node has not heartbeated within the lease ttl: it is not running,
    /// so `--force` cannot help.
    #[error(
        "node {node:?} last heartbeat was {heartbeat_age_ms} ms ago, more than the lease ttl of \
         {lease_ttl_ms} ms; it is not running"
    )]
    Unhealthy {
        /// The node asked for.
        node: String,
        /// Milliseconds since its last heartbeat.
        heartbeat_age_ms: i64,
        /// The lease ttl.
        lease_ttl_ms: i64,
    },
    /// The node is more than two heartbeats behind; `--force` overrides
    /// (LEASE-4).
    #[error(
        "node {node:?} last heartbeat was {heartbeat_age_ms} ms ago, more than two heartbeats \
         ({limit_ms} ms); use --force to promote it anyway"
    )]
    Lagging {
        /// The node asked for.
        node: String,
        /// Milliseconds since its last heartbeat.
        heartbeat_age_ms: i64,
        /// Two heartbeats.
        limit_ms: i64,
    },
}

/// Checks a manual promotion of `target` before the CLI records it.
///
/// Refusals in order: unknown, stopped, already hot, unhealthy (even with
/// `force`: the node is not there to take the lease), lagging (unless
/// `force`). A node that reports hot or demoting without holding the valid
/// lease is accepted: its row is stale or it is on its way to cold.
pub fn check_promote(
    view: &ClusterView,
    target: &str,
    force: bool,
    rules: &FailoverRules,
) -> Result<(), PromoteRefusal> {
    let node = view
        .node(target)
        .ok_or_else(|| PromoteRefusal::UnknownNode {
            cluster: view.cluster.clone(),
            node: target.to_owned(),
        })?;
    if node.role == NodeRole::Stopped {
        return Err(PromoteRefusal::Stopped {
            node: node.name.clone(),
        });
    }
    if view.holds_valid_lease(target) {
        return Err(PromoteRefusal::AlreadyHot {
            node: node.name.clone(),
            epoch: view.epoch,
            lease_remaining_ms: view.lease_remaining_ms.unwrap_or_default(),
        });
    }
    if node.heartbeat_age_ms > rules.lease_ttl_ms {
        return Err(PromoteRefusal::Unhealthy {
            node: node.name.clone(),
            heartbeat_age_ms: node.heartbeat_age_ms,
            lease_ttl_ms: rules.lease_ttl_ms,
        });
    }
    if !force && node.heartbeat_age_ms > rules.lag_limit_ms() {
        return Err(PromoteRefusal::Lagging {
            node: node.name.clone(),
            heartbeat_age_ms: node.heartbeat_age_ms,
            limit_ms: rules.lag_limit_ms(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::view::PromoteRequest;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    use NodeRole::{Cold, Demoting, Hot, Stopped};

    /// heartbeat 5 s, ttl 30 s, grace 5 s, failover interval 30 s: live up to
    /// 30 000 ms, lagging past 10 000 ms, the candidate alone may try from
    /// 5 001 ms free, everyone from 15 001 ms free.
    fn rules() -> FailoverRules {
        FailoverRules::new(&LeaseConfig::default())
    }

    fn node(name: &str, role: NodeRole, heartbeat_age_ms: i64) -> NodeView {
        NodeView {
            name: name.to_owned(),
            role,
            epoch: 3,
            heartbeat_age_ms,
        }
    }

    fn view(
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
        }
    }

    fn promote(mut v: ClusterView, node: &str) -> ClusterView {
        v.promote = Some(PromoteRequest {
            node: node.to_owned(),
            force: false,
        });
        v
    }

    fn since_failover(mut v: ClusterView, ms: i64) -> ClusterView {
        v.since_last_failover_ms = Some(ms);
        v
    }

    fn demote(mut v: ClusterView, node: &str) -> ClusterView {
        v.demote = Some(node.to_owned());
        v
    }

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

    fn role() -> impl Strategy<Value = NodeRole> {
        prop_oneof![Just(Hot), Just(Cold), Just(Demoting), Just(Stopped)]
    }

    fn arb_rules() -> impl Strategy<Value = FailoverRules> {
        prop_oneof![
            Just(LeaseConfig::default()),
            Just(LeaseConfig::from_secs(1, 3, 1)),
            Just(LeaseConfig::from_secs(2, 10, 0)),
        ]
        .prop_map(|c| FailoverRules::new(&c))
    }

    /// Unique names, as the primary key guarantees; ages around the ttls
    /// above so that liveness varies.
    fn arb_nodes() -> impl Strategy<Value = Vec<NodeView>> {
        let names = vec!["a", "b", "c", "d", "e", "f"];
        proptest::collection::btree_map(
            proptest::sample::select(names),
            (role(), -100i64..40_000),
            0..6,
        )
        .prop_map(|nodes: BTreeMap<&str, (NodeRole, i64)>| {
            nodes
                .into_iter()
                .map(|(name, (role, age))| node(name, role, age))
                .collect()
        })
    }

    proptest! {
        /// In the window where only the candidate may try for a lost lease,
        /// at most one node tries: the choice is deterministic and unique.
        /// (A released lease is free to every standby at once by design.)
        #[test]
        fn one_node_at_most_tries_inside_the_candidate_window(
            rules in arb_rules(),
            nodes in arb_nodes(),
            leader in proptest::sample::select(vec!["a", "b", "ghost"]),
            edge in 0u8..4,
            into_window in 1i64..=10_000,
            since_failover in proptest::option::of(0i64..60_000),
            demote_a in any::<bool>(),
        ) {
            // Both ends of the window half the time: that is where an
            // off-by-one would let a second node in.
            let window = rules.lag_limit_ms();
            let free = rules.lease_grace_ms
                + match edge {
                    0 => 1,
                    1 => window,
                    _ => 1 + (into_window - 1) % window,
                };
            let mut v = view(Some(leader), Some(-free), nodes);
            v.since_last_failover_ms = since_failover;
            v.demote = demote_a.then(|| "a".to_owned());
            let trying: Vec<&str> =
                v.nodes.iter().map(|n| n.name.as_str()).filter(|me| should_try_acquire(&v, me, &rules)).collect();
            prop_assert!(trying.len() <= 1, "several nodes try at once: {:?}", trying);
            if let Some(me) = trying.first() {
                prop_assert_eq!(choose_candidate(&v, &rules).map(|n| n.name.as_str()), Some(*me));
            }
        }

        /// The candidate does not depend on the order of the rows.
        #[test]
        fn candidate_ignores_row_order(rules in arb_rules(), nodes in arb_nodes(), leader in proptest::option::of(proptest::sample::select(vec!["a", "b"])), remaining in -40_000i64..40_000) {
            let v = view(leader, Some(remaining), nodes);
            let mut reversed = v.clone();
            reversed.nodes.reverse();
            prop_assert_eq!(
                choose_candidate(&v, &rules).map(|n| n.name.clone()),
                choose_candidate(&reversed, &rules).map(|n| n.name.clone())
            );
        }
    }
}
