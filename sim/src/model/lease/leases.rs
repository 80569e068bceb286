//! The hot/cold lease as Postgres holds it: the cluster row (epoch, leader,
//! expiry, the session lock the lease is bound to) and the node rows, judged
//! by the database host's clock. It mirrors the statements of
//! `adapters/src/daemon/pg_lease_store.rs`; the contract tests in
//! `sim/tests/contract.rs` hold it to the same answers. Each request is
//! applied atomically, as the single statements (and the fenced
//! transaction, whose lock a grant waits for) are in Postgres.

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_core::lease::{
    ClusterTiming, ClusterView, LeaseSession, NodeRole, NodeView, PromoteRequest,
};
use uuid::Uuid;

use super::records::{GrantRecord, OperatorRecord, OperatorRequest, WriteRecord};
use super::sessions::LeaseSessions;
use crate::protocol::{Caller, LeaseRequest, Reply};

#[derive(Debug, Clone)]
struct ClusterRow {
    epoch: u64,
    leader: Option<String>,
    expires_at: Option<Duration>,
    /// The session lock the lease is bound to (`lease_lock_key`).
    lock_key: Option<i64>,
    last_failover_at: Option<Duration>,
    min_cold_standbys: u32,
    timing: ClusterTiming,
    /// A pending promotion (`promote_node`, `promote_force`).
    promote: Option<PromoteRequest>,
    /// A pending demotion (`demote_node`).
    demote: Option<String>,
}

#[derive(Debug, Clone)]
struct NodeRow {
    daemon_id: Uuid,
    role: NodeRole,
    epoch: u64,
    heartbeat_at: Duration,
}

/// The lease rows of every cluster, and what the checks need of them.
#[derive(Debug, Clone)]
pub struct ModelLeases {
    clusters: BTreeMap<String, ClusterRow>,
    nodes: BTreeMap<(String, String), NodeRow>,
    /// Every committed write.
    pub writes: Vec<WriteRecord>,
    /// Every grant.
    pub grants: Vec<GrantRecord>,
    /// Every operator request, as applied.
    pub operator_requests: Vec<OperatorRecord>,
    /// Writes the fence refused.
    pub refused_writes: usize,
    /// Off only in the test that shows the checks catch a missing fence.
    pub fence_disabled: bool,
    /// The server's WAL timeline: 1, raised by each promotion of a standby.
    pub timeline: u64,
    /// Off only in the test that shows the checks catch an epoch granted
    /// twice across a lossy promotion: grants then count on from the row.
    pub epoch_floor_disabled: bool,
}

impl Default for ModelLeases {
    fn default() -> Self {
        ModelLeases {
            clusters: BTreeMap::new(),
            nodes: BTreeMap::new(),
            writes: Vec::new(),
            grants: Vec::new(),
            operator_requests: Vec::new(),
            refused_writes: 0,
            fence_disabled: false,
            timeline: 1,
            epoch_floor_disabled: false,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn signed_ms(later: Duration, earlier: Duration) -> i64 {
    if later >= earlier {
        ms(later - earlier)
    } else {
        -ms(earlier - later)
    }
}

impl ModelLeases {
    /// Applies a request of the lease domain; `sessions` are the open
    /// lease sessions a grant may bind to or a statement may run on.
    pub fn apply(
        &mut self,
        now: Duration,
        request: LeaseRequest,
        sessions: &LeaseSessions,
    ) -> Reply {
        match request {
            LeaseRequest::Register {
                caller,
                min_cold_standbys,
                timing,
            } => self.register(now, &caller, min_cold_standbys, timing),
            LeaseRequest::Heartbeat {
                caller,
                role,
                epoch,
            } => self.heartbeat(now, &caller, role, epoch, sessions),
            LeaseRequest::TryAcquire {
                caller,
                ttl_us,
                grace_us,
                session,
            } => self.try_acquire(
                now,
                &caller,
                Duration::from_micros(ttl_us),
                Duration::from_micros(grace_us),
                session,
                sessions,
            ),
            LeaseRequest::Renew {
                caller,
                epoch,
                ttl_us,
                session,
            } => self.renew(
                now,
                &caller,
                epoch,
                Duration::from_micros(ttl_us),
                session,
                sessions,
            ),
            LeaseRequest::Release { caller, epoch } => self.release(now, &caller, epoch),
            LeaseRequest::MarkStopped { caller } => {
                if let Some(row) = self.own_row(&caller) {
                    row.role = NodeRole::Stopped;
                }
                Reply::Done
            }
            LeaseRequest::FencedWrite { caller, epoch } => self.fenced_write(now, &caller, epoch),
            LeaseRequest::ClusterView { cluster } => match self.clusters.contains_key(&cluster) {
                true => Reply::View(self.view(now, &cluster, sessions)),
                false => Reply::NoCluster,
            },
            LeaseRequest::RequestPromote {
                cluster,
                node,
                force,
            } => self.request_promote(now, &cluster, node, force),
            LeaseRequest::RequestDemote { cluster, node } => {
                self.request_demote(now, &cluster, node)
            }
            // The database host runs these itself: they span time or
            // connections.
            LeaseRequest::FrozenFencedWrite { .. }
            | LeaseRequest::Listen
            | LeaseRequest::OpenSession { .. }
            | LeaseRequest::WaitSessionEnd { .. } => {
                Reply::Failed("handled by the database host".to_owned())
            }
        }
    }

    fn key(caller: &Caller) -> (String, String) {
        (caller.cluster.clone(), caller.node.clone())
    }

    fn own_row(&mut self, caller: &Caller) -> Option<&mut NodeRow> {
        self.nodes
            .get_mut(&Self::key(caller))
            .filter(|r| r.daemon_id == caller.daemon_id)
    }

    fn register(
        &mut self,
        now: Duration,
        caller: &Caller,
        min: u32,
        timing: ClusterTiming,
    ) -> Reply {
        // A row of this daemon id under another name is renamed; a row of
        // this name is taken over (LEASE-5).
        let renamed = self
            .nodes
            .iter()
            .find(|((c, n), r)| {
                *c == caller.cluster && *n != caller.node && r.daemon_id == caller.daemon_id
            })
            .map(|(k, _)| k.clone());
        if let Some(old) = &renamed {
            // As in Postgres: renaming onto a name another daemon owns is
            // refused and changes nothing.
            if let Some(owner) = self
                .nodes
                .get(&Self::key(caller))
                .filter(|r| r.daemon_id != caller.daemon_id)
            {
                return Reply::Failed(format!(
                    "node name {:?} belongs to daemon {}, while daemon {} is registered as {:?}",
                    caller.node, owner.daemon_id, caller.daemon_id, old.1
                ));
            }
        }
        let cluster = self
            .clusters
            .entry(caller.cluster.clone())
            .or_insert(ClusterRow {
                epoch: 0,
                leader: None,
                expires_at: None,
                lock_key: None,
                last_failover_at: None,
                min_cold_standbys: min,
                timing,
                promote: None,
                demote: None,
            });
        cluster.min_cold_standbys = min;
        cluster.timing = timing;
        if let Some(old) = renamed {
            self.nodes.remove(&old);
        }
        self.nodes.insert(
            Self::key(caller),
            NodeRow {
                daemon_id: caller.daemon_id,
                role: NodeRole::Cold,
                epoch: 0,
                heartbeat_at: now,
            },
        );
        Reply::Done
    }

    fn heartbeat(
        &mut self,
        now: Duration,
        caller: &Caller,
        role: NodeRole,
        epoch: u64,
        sessions: &LeaseSessions,
    ) -> Reply {
        if !self.clusters.contains_key(&caller.cluster) {
            return Reply::Failed(format!("no cluster named {:?}", caller.cluster));
        }
        match self.nodes.get_mut(&Self::key(caller)) {
            Some(row) if row.daemon_id != caller.daemon_id => {
                return Reply::Replaced { by: row.daemon_id }
            }
            Some(row) => {
                row.role = role;
                row.epoch = epoch;
                row.heartbeat_at = now;
            }
            None => {
                self.nodes.insert(
                    Self::key(caller),
                    NodeRow {
                        daemon_id: caller.daemon_id,
                        role,
                        epoch,
                        heartbeat_at: now,
                    },
                );
            }
        }
        Reply::View(self.view(now, &caller.cluster, sessions))
    }

    /// The cluster as a heartbeat returns it.
    pub fn view(&self, now: Duration, cluster: &str, sessions: &LeaseSessions) -> ClusterView {
        let c = &self.clusters[cluster];
        let nodes = self
            .nodes
            .iter()
            .filter(|((cl, _), _)| cl == cluster)
            .map(|((_, name), r)| NodeView {
                name: name.clone(),
                role: r.role,
                epoch: r.epoch,
                heartbeat_age_ms: signed_ms(now, r.heartbeat_at),
            })
            .collect();
        ClusterView {
            cluster: cluster.to_owned(),
            epoch: c.epoch,
            leader: c.leader.clone(),
            lease_remaining_ms: c.expires_at.map(|e| signed_ms(e, now)),
            min_cold_standbys: c.min_cold_standbys,
            timing: c.timing,
            since_last_failover_ms: c.last_failover_at.map(|t| signed_ms(now, t)),
            promote: c.promote.clone(),
            demote: c.demote.clone(),
            nodes,
            lease_session: c.lock_key.map(|key| LeaseSession {
                key,
                alive: sessions.held(key),
            }),
        }
    }

    /// Whether the current lease of `c` is bound to a session lock that no
    /// session holds any more: its holder's session ended.
    fn session_ended(sessions: &LeaseSessions, c: &ClusterRow) -> bool {
        c.lock_key.is_some_and(|key| !sessions.held(key))
    }

    /// `TRY_ACQUIRE`. A lease bound to a lock no session holds is free at
    /// once; a grant made on a lease session binds the lease to its lock.
    fn try_acquire(
        &mut self,
        now: Duration,
        caller: &Caller,
        ttl: Duration,
        grace: Duration,
        session: Option<u64>,
        sessions: &LeaseSessions,
    ) -> Reply {
        // On Postgres the statement fails with its dead connection.
        if session.is_some_and(|id| !sessions.is_open(id)) {
            return Reply::SessionGone;
        }
        if self.own_row(caller).is_none() {
            return Reply::Denied;
        }
        let Some(c) = self.clusters.get_mut(&caller.cluster) else {
            return Reply::Denied;
        };
        let free = c.leader.is_none()
            || c.leader.as_deref() == Some(caller.node.as_str())
            || c.expires_at.is_none_or(|e| e + grace < now)
            || Self::session_ended(sessions, c);
        if !free {
            return Reply::Denied;
        }
        let failover = c.leader.as_deref().is_some_and(|l| l != caller.node);
        if failover {
            c.last_failover_at = Some(now);
        }
        // The grant fulfils a promotion of the grantee; a demotion of
        // anyone else is moot once they lost the lease.
        let promoted = c.promote.as_ref().is_some_and(|p| p.node == caller.node);
        if promoted {
            c.promote = None;
        }
        if c.demote.as_deref() != Some(caller.node.as_str()) {
            c.demote = None;
        }
        // `rf_epoch_floor()` (sql/0020): each timeline's epochs start above
        // every epoch of the timelines before it, so an epoch granted on a
        // history a promotion lost is never granted again.
        let floor = (self.timeline - 1) << 32;
        c.epoch = if self.epoch_floor_disabled {
            c.epoch + 1
        } else {
            (c.epoch + 1).max(floor)
        };
        c.leader = Some(caller.node.clone());
        c.expires_at = Some(now + ttl);
        // The statement runs on the session, which holds its own key.
        c.lock_key = session.and_then(|id| sessions.key_of(id));
        self.grants.push(GrantRecord {
            at: now,
            node: caller.node.clone(),
            epoch: c.epoch,
            failover,
            promoted,
        });
        Reply::Granted {
            epoch: c.epoch,
            valid_us: u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// `RENEW`: a lease bound to a lock only on the session holding it.
    fn renew(
        &mut self,
        now: Duration,
        caller: &Caller,
        epoch: u64,
        ttl: Duration,
        session: Option<u64>,
        sessions: &LeaseSessions,
    ) -> Reply {
        if session.is_some_and(|id| !sessions.is_open(id)) {
            return Reply::SessionGone;
        }
        let mine = session.and_then(|id| sessions.key_of(id));
        let owned = self.own_row(caller).is_some();
        let Some(c) = self.clusters.get_mut(&caller.cluster) else {
            return Reply::Lost;
        };
        let holds = owned
            && c.leader.as_deref() == Some(caller.node.as_str())
            && c.epoch == epoch
            && c.expires_at.is_some_and(|e| e > now)
            && c.lock_key.is_none_or(|key| mine == Some(key));
        if !holds {
            return Reply::Lost;
        }
        let expires = c.expires_at.map_or(now + ttl, |e| e.max(now + ttl));
        c.expires_at = Some(expires);
        Reply::Renewed {
            valid_us: u64::try_from((expires - now).as_micros()).unwrap_or(u64::MAX),
        }
    }

    fn release(&mut self, now: Duration, caller: &Caller, epoch: u64) -> Reply {
        if let Some(c) = self.clusters.get_mut(&caller.cluster) {
            if c.leader.as_deref() == Some(caller.node.as_str()) && c.epoch == epoch {
                c.leader = None;
                c.expires_at = Some(now);
                c.lock_key = None;
                if c.demote.as_deref() == Some(caller.node.as_str()) {
                    c.demote = None;
                }
            }
        }
        Reply::Done
    }

    /// `REQUEST_PROMOTE`: for an existing node of an existing cluster,
    /// replacing any pending promotion.
    fn request_promote(
        &mut self,
        now: Duration,
        cluster: &str,
        node: String,
        force: bool,
    ) -> Reply {
        let member = self.nodes.contains_key(&(cluster.to_owned(), node.clone()));
        let Some(c) = self.clusters.get_mut(cluster) else {
            return self.requested(now, OperatorRequest::Promote { node, force }, false, false);
        };
        if member {
            c.promote = Some(PromoteRequest {
                node: node.clone(),
                force,
            });
        }
        self.requested(now, OperatorRequest::Promote { node, force }, member, true)
    }

    /// `REQUEST_DEMOTE`: of an existing node, or (None) of the holder of
    /// the unexpired lease if there is one. As in Postgres, "unexpired" is
    /// the expiry alone: a lease whose session ended still counts.
    fn request_demote(&mut self, now: Duration, cluster: &str, node: Option<String>) -> Reply {
        let target = match &node {
            Some(n) => self
                .nodes
                .contains_key(&(cluster.to_owned(), n.clone()))
                .then(|| n.clone()),
            None => self.clusters.get(cluster).and_then(|c| {
                c.leader
                    .clone()
                    .filter(|_| c.expires_at.is_some_and(|e| e > now))
            }),
        };
        let Some(c) = self.clusters.get_mut(cluster) else {
            let request = OperatorRequest::Demote {
                node,
                demoted: None,
            };
            return self.requested(now, request, false, false);
        };
        if let Some(target) = &target {
            c.demote = Some(target.clone());
        }
        let written = target.is_some();
        let request = OperatorRequest::Demote {
            node,
            demoted: target,
        };
        self.requested(now, request, written, true)
    }

    fn requested(
        &mut self,
        now: Duration,
        request: OperatorRequest,
        written: bool,
        cluster_exists: bool,
    ) -> Reply {
        self.operator_requests.push(OperatorRecord {
            at: now,
            request,
            written,
        });
        Reply::Requested {
            written,
            cluster_exists,
        }
    }

    fn fenced_write(&mut self, now: Duration, caller: &Caller, epoch: u64) -> Reply {
        if !self.fence_admits(now, caller, epoch) {
            return Reply::Fenced;
        }
        self.commit_write(now, caller, epoch);
        Reply::Done
    }

    /// The fence check at the start of a write transaction: the epoch is
    /// current and its lease unexpired. Counts a refusal.
    pub fn fence_admits(&mut self, now: Duration, caller: &Caller, epoch: u64) -> bool {
        let current = self
            .clusters
            .get(&caller.cluster)
            .is_some_and(|c| c.epoch == epoch && c.expires_at.is_some_and(|e| e > now));
        if !current && !self.fence_disabled {
            self.refused_writes += 1;
            return false;
        }
        true
    }

    /// The rows alone, as a standby replays them: the checks' records stay
    /// with the primary that made them.
    pub fn rows_only(&self) -> ModelLeases {
        ModelLeases {
            clusters: self.clusters.clone(),
            nodes: self.nodes.clone(),
            writes: Vec::new(),
            grants: Vec::new(),
            operator_requests: Vec::new(),
            refused_writes: 0,
            fence_disabled: self.fence_disabled,
            timeline: self.timeline,
            epoch_floor_disabled: self.epoch_floor_disabled,
        }
    }

    /// Takes the rows of `replica` (a promoted standby's), keeping the
    /// records of everything this server did, and moves to the next
    /// timeline.
    pub fn promote(&mut self, replica: &ModelLeases) {
        self.clusters = replica.clusters.clone();
        self.nodes = replica.nodes.clone();
        self.timeline = replica.timeline + 1;
    }

    /// Commits a write under `epoch`, recording the cluster's state at the
    /// commit for the single-writer check.
    pub fn commit_write(&mut self, now: Duration, caller: &Caller, epoch: u64) {
        let (current_epoch, lease_valid) =
            self.clusters.get(&caller.cluster).map_or((0, false), |c| {
                (c.epoch, c.expires_at.is_some_and(|e| e > now))
            });
        self.writes.push(WriteRecord {
            at: now,
            node: caller.node.clone(),
            epoch,
            current_epoch,
            lease_valid,
        });
    }

    /// The node named as leader (valid or not).
    pub fn leader(&self, cluster: &str) -> Option<String> {
        self.clusters.get(cluster)?.leader.clone()
    }

    /// The holder of an unexpired lease at `now` whose session, if the
    /// lease is bound to one, is still open, with its epoch.
    pub fn valid_leader(
        &self,
        now: Duration,
        cluster: &str,
        sessions: &LeaseSessions,
    ) -> Option<(String, u64)> {
        let c = self.clusters.get(cluster)?;
        let leader = c.leader.clone()?;
        if Self::session_ended(sessions, c) {
            return None;
        }
        c.expires_at.filter(|e| *e > now).map(|_| (leader, c.epoch))
    }
}
