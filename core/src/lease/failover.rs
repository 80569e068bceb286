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
    pub fn lag_limit_ms(&self) -> i64 {
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
///
/// A lease whose session ended is free although its ttl runs on; the view
/// cannot say since when, so it counts as freed just now.
pub fn lease_free_for_ms(view: &ClusterView) -> Option<i64> {
    match (view.leader.as_deref(), view.lease_remaining_ms) {
        (_, None) => Some(i64::MAX),
        (Some(_), Some(remaining)) if remaining > 0 => view.leader_session_ended().then_some(0),
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
/// - A lease whose holder's session ended: its holder is gone (or can no
///   longer renew), so there is no grace to wait out; the rest is as for a
///   lost lease. A holder whose session was cut while it still runs may
///   write until it learns; the epoch fence refuses it once the lease moved.
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
    let past_grace = free_for > rules.lease_grace_ms || view.leader_session_ended();
    if !past_grace || !interval_passed {
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
    /// The session this node's lease is bound to has ended (the server
    /// ended it, or the connection broke): anyone may take the lease now, so
    /// stop at once and stand by.
    SessionEnded,
}

/// Whether the hot node `me` should step down, judged from a view.
///
/// Superseded and an ended session win over the operator's requests: when
/// another node holds the grant, or may take it at any moment, stopping at
/// once matters more than a graceful release.
/// A promotion hands over only to a live standby, so a request naming a node
/// that died after it was made cannot make the hot node release again and
/// again (LEASE-4).
pub fn should_step_down(view: &ClusterView, me: &str, rules: &FailoverRules) -> Option<StepDown> {
    if view.leader.as_deref().is_some_and(|leader| leader != me) {
        return Some(StepDown::Superseded);
    }
    if view.leader_session_ended() {
        return Some(StepDown::SessionEnded);
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
