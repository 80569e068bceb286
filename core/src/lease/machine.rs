//! One daemon node's side of the lease protocol, as a sans-IO state machine.

use std::collections::VecDeque;

use super::config::LeaseConfig;
use super::failover::{self, FailoverRules, StepDown};
use super::outcome::{AcquireOutcome, RenewOutcome};
use super::time::MonoTime;
use super::view::{ClusterView, NodeRole};

/// Correlates a request with its reply; replies to superseded requests are
/// ignored.
pub type RequestId = u64;

/// A request's outcome is unknown (connection lost, timeout, server down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFailed;

/// Something that happened to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed; nothing else happened.
    Tick,
    /// Reply to [`Action::Heartbeat`].
    Heartbeat {
        /// The request.
        req: RequestId,
        /// The cluster as the database saw it.
        result: Result<ClusterView, RequestFailed>,
    },
    /// Reply to [`Action::TryAcquire`].
    Acquired {
        /// The request.
        req: RequestId,
        /// The database's answer.
        result: Result<AcquireOutcome, RequestFailed>,
    },
    /// Reply to [`Action::Renew`].
    Renewed {
        /// The request.
        req: RequestId,
        /// The database's answer.
        result: Result<RenewOutcome, RequestFailed>,
    },
    /// Reply to [`Action::Release`] (whatever happened: an unreleased lease
    /// simply expires).
    Released {
        /// The request.
        req: RequestId,
    },
    /// The projections of `epoch` have stopped after [`Action::StopProcessing`].
    ProcessingStopped {
        /// The epoch they ran under.
        epoch: u64,
    },
    /// Another node released its lease (a database notification).
    PeerReleased,
    /// The session the leader's lease is bound to has ended (the wait on
    /// [`NodeMachine::session_to_watch`] returned).
    LeaderSessionEnded,
    /// The operator asked the process to stop (SIGINT/SIGTERM).
    Shutdown,
}

/// Something the driver must do, then report back as an [`Input`].
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Record a heartbeat with this role and epoch; reply with the cluster view.
    Heartbeat {
        /// The request.
        req: RequestId,
        /// Role to record.
        role: NodeRole,
        /// Epoch to record.
        epoch: u64,
    },
    /// Ask the database for the lease.
    TryAcquire {
        /// The request.
        req: RequestId,
    },
    /// Extend the lease of `epoch`.
    Renew {
        /// The request.
        req: RequestId,
        /// The epoch held.
        epoch: u64,
    },
    /// Give the lease of `epoch` up and wake the standbys.
    Release {
        /// The request.
        req: RequestId,
        /// The epoch held.
        epoch: u64,
    },
    /// Run projections; every write is fenced with `epoch`.
    StartProcessing {
        /// The epoch granted.
        epoch: u64,
    },
    /// Finish the current batch and stop; reply with `ProcessingStopped`.
    StopProcessing {
        /// The epoch they run under.
        epoch: u64,
    },
    /// Mark the node stopped and end the process.
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterDemote {
    Standby,
    Exit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Cold {
        holdoff_until: Option<MonoTime>,
    },
    Acquiring {
        req: RequestId,
        sent: MonoTime,
    },
    Hot {
        epoch: u64,
        deadline: MonoTime,
        renew: Option<(RequestId, MonoTime)>,
    },
    Stopping {
        epoch: u64,
        deadline: MonoTime,
        then: AfterDemote,
    },
    Releasing {
        epoch: u64,
        req: RequestId,
        sent: MonoTime,
        then: AfterDemote,
    },
    Stopped,
}

/// The lease state machine of one node: cold → (acquiring) → hot →
/// (stopping → releasing) → cold, or stopped on shutdown.
///
/// Contract: call [`handle`](Self::handle) with the current monotonic time
/// for every input (including [`Input::Tick`] when
/// [`poll_timeout`](Self::poll_timeout) is reached), then drain
/// [`poll_action`](Self::poll_action) until it returns `None` and perform
/// each action, feeding its outcome back as an input. Times come from one
/// monotonic clock of this process only; the machine never compares them with
/// another node's clock or the database's (LEASE-2). It believes it may write
/// only until `send time of the last successful grant/renewal + validity −
/// safety margin`, which is before the database can grant the lease to anyone
/// else; fencing in the database catches whatever that belief gets wrong.
#[derive(Debug, Clone)]
pub struct NodeMachine {
    me: String,
    config: LeaseConfig,
    rules: FailoverRules,
    state: State,
    epoch: u64,
    next_req: RequestId,
    next_heartbeat: MonoTime,
    pending_heartbeat: Option<(RequestId, MonoTime)>,
    shutting_down: bool,
    /// The leader's session lock in the last view, while that session was
    /// open and another node led.
    leader_session: Option<i64>,
    /// An epoch this node stopped believing in on its own clock (no renewal
    /// in time, or a grant that arrived too late to use) while the database
    /// may still count its lease. Released on shutdown, so a graceful stop
    /// frees the lease at once instead of leaving it to expire.
    lapsed: Option<u64>,
    actions: VecDeque<Action>,
}

impl NodeMachine {
    /// A cold node named `me` that heartbeats at once.
    pub fn new(me: impl Into<String>, config: LeaseConfig, now: MonoTime) -> Self {
        let rules = FailoverRules::new(&config);
        NodeMachine {
            me: me.into(),
            config,
            rules,
            state: State::Cold {
                holdoff_until: None,
            },
            epoch: 0,
            next_req: 1,
            next_heartbeat: now,
            pending_heartbeat: None,
            shutting_down: false,
            leader_session: None,
            lapsed: None,
            actions: VecDeque::new(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.me
    }

    /// The role this node reports.
    pub fn role(&self) -> NodeRole {
        match self.state {
            State::Cold { .. } | State::Acquiring { .. } => NodeRole::Cold,
            State::Hot { .. } => NodeRole::Hot,
            State::Stopping { .. } | State::Releasing { .. } => NodeRole::Demoting,
            State::Stopped => NodeRole::Stopped,
        }
    }

    /// The epoch under which this node may write at `now`, if any. Writers
    /// check it before every batch; the database's fence checks it again.
    pub fn may_write(&self, now: MonoTime) -> Option<u64> {
        self.write_permit()
            .filter(|(_, until)| now < *until)
            .map(|(epoch, _)| epoch)
    }

    /// The epoch this node writes under and the local time its belief ends,
    /// for writers running apart from the machine.
    pub fn write_permit(&self) -> Option<(u64, MonoTime)> {
        match self.state {
            State::Hot {
                epoch, deadline, ..
            }
            | State::Stopping {
                epoch, deadline, ..
            } => Some((epoch, deadline)),
            _ => None,
        }
    }

    /// The session lock a standby should wait on: the one the leader's
    /// lease is bound to, as the last view showed it open. When the wait
    /// ends, feed [`Input::LeaderSessionEnded`]. None while this node leads,
    /// stops, or the lease is bound to its ttl alone.
    pub fn session_to_watch(&self) -> Option<i64> {
        match self.state {
            State::Cold { .. } | State::Acquiring { .. } if !self.shutting_down => {
                self.leader_session
            }
            _ => None,
        }
    }

    /// True once the machine has asked to exit.
    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// The next action to perform.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call `handle(now, Input::Tick)` next.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        if self.state == State::Stopped {
            return None;
        }
        let request_deadline = |sent: MonoTime| sent + self.config.request_timeout;
        let mut next = self.next_heartbeat;
        let mut consider = |t: MonoTime| next = next.min(t);
        if let Some((_, sent)) = self.pending_heartbeat {
            consider(request_deadline(sent));
        }
        match self.state {
            State::Acquiring { sent, .. } | State::Releasing { sent, .. } => {
                consider(request_deadline(sent))
            }
            State::Hot {
                deadline, renew, ..
            } => {
                consider(deadline);
                if let Some((_, sent)) = renew {
                    consider(request_deadline(sent));
                }
            }
            State::Stopping { deadline, .. } => consider(deadline),
            State::Cold { .. } | State::Stopped => {}
        }
        Some(next)
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, now: MonoTime, input: Input) {
        if self.state == State::Stopped {
            return;
        }
        match input {
            Input::Tick => {}
            Input::Heartbeat { req, result } => self.on_heartbeat(now, req, result),
            Input::Acquired { req, result } => self.on_acquired(now, req, result),
            Input::Renewed { req, result } => self.on_renewed(now, req, result),
            Input::Released { req } => self.on_released(now, req),
            Input::ProcessingStopped { epoch } => self.on_processing_stopped(now, epoch),
            Input::PeerReleased | Input::LeaderSessionEnded => self.look_now(now),
            Input::Shutdown => self.on_shutdown(now),
        }
        self.on_time(now);
    }

    fn request(&mut self) -> RequestId {
        let id = self.next_req;
        self.next_req += 1;
        id
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// Timers: the lease deadline, request timeouts, the heartbeat.
    fn on_time(&mut self, now: MonoTime) {
        let timeout = self.config.request_timeout;
        match self.state.clone() {
            State::Hot {
                epoch, deadline, ..
            } if now >= deadline => {
                // No renewal arrived in time: stop believing before the
                // database can hand the lease to anyone else.
                self.push(Action::StopProcessing { epoch });
                self.lapsed = Some(epoch);
                self.state = State::Cold {
                    holdoff_until: None,
                };
                self.send_heartbeat(now);
            }
            State::Hot {
                epoch,
                deadline,
                renew: Some((_, sent)),
            } if now >= sent + timeout => {
                self.state = State::Hot {
                    epoch,
                    deadline,
                    renew: None,
                };
            }
            State::Acquiring { sent, .. } if now >= sent + timeout => {
                // Outcome unknown. If it was granted, the next heartbeat shows
                // this node as leader and a new acquire re-grants it under a
                // new epoch; until then it does not act.
                self.state = State::Cold {
                    holdoff_until: None,
                };
            }
            State::Stopping {
                epoch,
                deadline,
                then,
            } if now >= deadline => {
                // The batch did not finish while the lease could still be
                // valid. Whatever it still tries is fenced off; stop waiting
                // and let the lease go so the demotion completes.
                self.release(now, epoch, then);
            }
            State::Releasing { sent, then, .. } if now >= sent + timeout => {
                self.finish_demote(now, then)
            }
            _ => {}
        }
        if let Some((_, sent)) = self.pending_heartbeat {
            if now >= sent + timeout {
                self.pending_heartbeat = None;
            }
        }
        if now >= self.next_heartbeat && self.state != State::Stopped {
            self.heartbeat_now(now);
        }
    }

    /// The periodic beat: a heartbeat and, while hot, a renewal.
    fn heartbeat_now(&mut self, now: MonoTime) {
        self.next_heartbeat = now + self.config.heartbeat;
        self.send_heartbeat(now);
        if let State::Hot {
            epoch,
            deadline,
            renew: None,
        } = self.state
        {
            let req = self.request();
            self.state = State::Hot {
                epoch,
                deadline,
                renew: Some((req, now)),
            };
            self.push(Action::Renew { req, epoch });
        }
    }

    /// Reports the current role now, unless a heartbeat is already in flight.
    fn send_heartbeat(&mut self, now: MonoTime) {
        if self.pending_heartbeat.is_none() {
            let req = self.request();
            self.pending_heartbeat = Some((req, now));
            let (role, epoch) = (self.role(), self.epoch);
            self.push(Action::Heartbeat { req, role, epoch });
        }
    }

    fn on_heartbeat(
        &mut self,
        now: MonoTime,
        req: RequestId,
        result: Result<ClusterView, RequestFailed>,
    ) {
        if self.pending_heartbeat.map(|(r, _)| r) != Some(req) {
            return; // a late reply to a request already given up
        }
        self.pending_heartbeat = None;
        let Ok(view) = result else { return };
        self.leader_session = view
            .live_leader_session()
            .filter(|_| view.leader.as_deref() != Some(self.me.as_str()));
        match self.state.clone() {
            State::Cold { holdoff_until } => {
                // The hold-off keeps a node that gave the lease up from
                // taking it back on its own; an operator's promotion of
                // this very node is no such thing. A pending promotion
                // naming it was made after its release (its last grant
                // cleared any earlier one), and the hot node hands over to
                // it: holding off would leave the cluster without a hot
                // node until the hold-off ends.
                let promoted = view.promote.as_ref().is_some_and(|p| p.node == self.me);
                let held_off = !promoted && holdoff_until.is_some_and(|until| now < until);
                if !self.shutting_down
                    && !held_off
                    && failover::should_try_acquire(&view, &self.me, &self.rules)
                {
                    self.try_acquire(now);
                }
            }
            State::Hot {
                epoch, deadline, ..
            } => match failover::should_step_down(&view, &self.me, &self.rules) {
                Some(StepDown::Superseded) => {
                    self.push(Action::StopProcessing { epoch });
                    self.state = State::Cold {
                        holdoff_until: None,
                    };
                }
                Some(StepDown::SessionEnded) => {
                    // Anyone may take the lease now, this node included once
                    // it reports cold: report at once rather than a beat
                    // later, and give the lease back on shutdown.
                    self.push(Action::StopProcessing { epoch });
                    self.lapsed = Some(epoch);
                    self.state = State::Cold {
                        holdoff_until: None,
                    };
                    self.send_heartbeat(now);
                }
                Some(StepDown::Demoted) | Some(StepDown::Handoff { .. }) => {
                    self.begin_demote(epoch, deadline, AfterDemote::Standby);
                }
                None => {}
            },
            _ => {}
        }
    }

    fn try_acquire(&mut self, now: MonoTime) {
        let req = self.request();
        self.state = State::Acquiring { req, sent: now };
        self.push(Action::TryAcquire { req });
    }

    fn on_acquired(
        &mut self,
        now: MonoTime,
        req: RequestId,
        result: Result<AcquireOutcome, RequestFailed>,
    ) {
        let State::Acquiring { req: pending, sent } = self.state else {
            return;
        };
        if pending != req {
            return;
        }
        match result {
            Ok(AcquireOutcome::Granted(grant)) => {
                self.epoch = grant.epoch;
                self.lapsed = None;
                let deadline = sent + grant.valid_for.saturating_sub(self.config.safety_margin);
                if self.shutting_down {
                    // Granted while stopping: hand it straight back.
                    self.release(now, grant.epoch, AfterDemote::Exit);
                } else if now < deadline {
                    self.state = State::Hot {
                        epoch: grant.epoch,
                        deadline,
                        renew: None,
                    };
                    self.push(Action::StartProcessing { epoch: grant.epoch });
                    // Show the new role at once rather than a heartbeat later.
                    self.send_heartbeat(now);
                } else {
                    // The reply took longer than the lease: useless, let it lapse.
                    self.lapsed = Some(grant.epoch);
                    self.state = State::Cold {
                        holdoff_until: None,
                    };
                }
            }
            Ok(AcquireOutcome::Denied) | Err(RequestFailed) => {
                self.state = State::Cold {
                    holdoff_until: None,
                };
                if self.shutting_down {
                    self.exit();
                }
            }
        }
    }

    fn on_renewed(
        &mut self,
        now: MonoTime,
        req: RequestId,
        result: Result<RenewOutcome, RequestFailed>,
    ) {
        let State::Hot {
            epoch,
            deadline,
            renew: Some((pending, sent)),
        } = self.state
        else {
            return;
        };
        if pending != req {
            return;
        }
        match result {
            Ok(RenewOutcome::Renewed { valid_for }) => {
                let renewed = sent + valid_for.saturating_sub(self.config.safety_margin);
                self.state = State::Hot {
                    epoch,
                    deadline: deadline.max(renewed),
                    renew: None,
                };
            }
            Ok(RenewOutcome::Lost) => {
                self.lapsed = None;
                self.push(Action::StopProcessing { epoch });
                self.state = State::Cold {
                    holdoff_until: None,
                };
                self.send_heartbeat(now);
            }
            Err(RequestFailed) => {
                self.state = State::Hot {
                    epoch,
                    deadline,
                    renew: None,
                }
            }
        }
    }

    fn begin_demote(&mut self, epoch: u64, deadline: MonoTime, then: AfterDemote) {
        self.state = State::Stopping {
            epoch,
            deadline,
            then,
        };
        self.push(Action::StopProcessing { epoch });
    }

    fn on_processing_stopped(&mut self, now: MonoTime, epoch: u64) {
        match self.state {
            State::Stopping { epoch: e, then, .. } if e == epoch => self.release(now, epoch, then),
            // The work ended on its own (it failed, or its writes were
            // fenced off). Holding the lease without doing the work would
            // look healthy while nothing happens: hand it over and stand by,
            // held off for a while, so another node (or this one, later)
            // starts afresh.
            //
            // Unless the belief ran out: work stops on its own when its
            // permit lapses (a node that was frozen wakes with every timer
            // due at once, and the work may notice first). That is no
            // failure of the work; the deadline (in `on_time`, right after
            // this input) stands the node by without a holdoff, so a
            // handoff right after finds it ready.
            State::Hot {
                epoch: e, deadline, ..
            } if e == epoch && now < deadline => self.release(now, epoch, AfterDemote::Standby),
            _ => {}
        }
    }

    fn release(&mut self, now: MonoTime, epoch: u64, then: AfterDemote) {
        let req = self.request();
        self.state = State::Releasing {
            epoch,
            req,
            sent: now,
            then,
        };
        self.push(Action::Release { req, epoch });
    }

    fn on_released(&mut self, now: MonoTime, req: RequestId) {
        if let State::Releasing {
            req: pending, then, ..
        } = self.state
        {
            if pending == req {
                self.finish_demote(now, then);
            }
        }
    }

    fn finish_demote(&mut self, now: MonoTime, then: AfterDemote) {
        match then {
            AfterDemote::Exit => self.exit(),
            AfterDemote::Standby => {
                self.state = State::Cold {
                    holdoff_until: Some(now + self.config.demote_holdoff),
                };
                self.send_heartbeat(now);
            }
        }
    }

    fn look_now(&mut self, now: MonoTime) {
        // A graceful release, or the end of the leader's session, frees the
        // lease at once: look now instead of at the next heartbeat, so a
        // standby takes over within a round trip.
        if matches!(self.state, State::Cold { .. }) && !self.shutting_down {
            self.pending_heartbeat = None;
            self.send_heartbeat(now);
        }
    }

    fn on_shutdown(&mut self, now: MonoTime) {
        self.shutting_down = true;
        match self.state.clone() {
            // A lease that lapsed only on this node's clock may still be
            // valid in the database: give it back (a no-op if it moved on)
            // so a standby need not wait for it to expire.
            State::Cold { .. } => match self.lapsed.take() {
                Some(epoch) => self.release(now, epoch, AfterDemote::Exit),
                None => self.exit(),
            },
            State::Hot {
                epoch, deadline, ..
            } => self.begin_demote(epoch, deadline, AfterDemote::Exit),
            State::Stopping {
                epoch, deadline, ..
            } => {
                self.state = State::Stopping {
                    epoch,
                    deadline,
                    then: AfterDemote::Exit,
                }
            }
            State::Releasing {
                epoch, req, sent, ..
            } => {
                self.state = State::Releasing {
                    epoch,
                    req,
                    sent,
                    then: AfterDemote::Exit,
                }
            }
            // The acquire reply decides: a grant is handed straight back.
            State::Acquiring { .. } | State::Stopped => {}
        }
    }

    fn exit(&mut self) {
        self.state = State::Stopped;
        self.pending_heartbeat = None;
        self.push(Action::Exit);
    }
}
