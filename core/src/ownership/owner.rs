//! One worker's side of dynamic partition ownership, as a state machine.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::fair_share::{decide, Move};
use super::watch_ring::{session_to_watch, watcher_of};
use crate::lease::MonoTime;

/// How often a worker syncs and how long a partition lease lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerTiming {
    /// A sync round (heartbeat, view, renewals, moves) every this long.
    pub heartbeat: Duration,
    /// A lease granted or renewed lasts this long (database clock). A worker
    /// stops using a partition this long after the round that last renewed
    /// it began, on its own clock, before the database can give it away.
    pub ttl: Duration,
}

/// Timings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerTimingError {
    /// Renewals need room: a lease must outlive at least two rounds.
    #[error("partition lease ttl {ttl:?} must be at least twice the heartbeat {heartbeat:?}")]
    TtlTooShort {
        /// The heartbeat given.
        heartbeat: Duration,
        /// The ttl given.
        ttl: Duration,
    },
}

impl OwnerTiming {
    /// Checks that a lease outlives two rounds.
    pub fn validate(&self) -> Result<(), OwnerTimingError> {
        if self.heartbeat.is_zero() || self.ttl < self.heartbeat * 2 {
            return Err(OwnerTimingError::TtlTooShort {
                heartbeat: self.heartbeat,
                ttl: self.ttl,
            });
        }
        Ok(())
    }

    /// How long one try of a batch on an owned partition may take. The
    /// batch holds the partition's lease row `FOR SHARE`, so the round
    /// renewing it waits for the batch. A batch is tried at most twice in a
    /// row (all at once, then event by event); two tries that start up to a
    /// heartbeat after the latest renewal still leave a round before the
    /// worker's own deadline. Never below a heartbeat, the limit every
    /// statement had before batches got one.
    pub fn batch_budget(&self) -> Duration {
        (self.ttl.saturating_sub(self.heartbeat * 2) / 2).max(self.heartbeat)
    }
}

/// Who holds a partition, as the database shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The worker.
    pub worker: String,
    /// The epoch it holds it under.
    pub epoch: u64,
}

/// What the worker learns or is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed; nothing else happened.
    Tick,
    /// A sync's answer: the partition count, live workers (this one
    /// included, since the sync heartbeats first) and unexpired holders.
    Viewed {
        /// The projection's partition count now.
        partitions: u32,
        /// Live workers.
        workers: Vec<String>,
        /// Unexpired leases by partition.
        holders: BTreeMap<u32, Holder>,
        /// The session key of each live worker whose registration names
        /// one (sql/0018); empty where sessions are not tracked.
        sessions: BTreeMap<String, i64>,
        /// Workers whose session ended within their ttl (they died), with
        /// that session.
        ended: BTreeMap<String, i64>,
    },
    /// A claim's answer: the epoch granted, or None when someone holds it.
    Claimed {
        /// The partition.
        partition: u32,
        /// The epoch granted.
        epoch: Option<u64>,
    },
    /// A renewal's answer: false when the lease is no longer held.
    Renewed {
        /// The partition.
        partition: u32,
        /// The epoch renewed.
        epoch: u64,
        /// Whether it was still held.
        held: bool,
    },
    /// The fence refused a batch of this partition under this epoch.
    Fenced {
        /// The partition.
        partition: u32,
        /// The epoch refused.
        epoch: u64,
    },
    /// Another worker of the projection released a partition, joined, left
    /// or died: sync now rather than at the next heartbeat.
    PeerChanged,
    /// This worker's waiter heard the session `key` it watched end
    /// ([`PartitionOwner::session_to_watch`]) and told every worker to sync.
    PeerSessionEnded {
        /// The session that ended.
        key: i64,
    },
    /// A store call failed; its outcome is unknown.
    Failed,
    /// Stop: give everything up and leave.
    Shutdown,
}

/// What the adapter must do, in order.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Heartbeat, then read the view; answer with [`Input::Viewed`].
    Sync,
    /// Try to take an unowned partition; answer with [`Input::Claimed`].
    Claim {
        /// The partition.
        partition: u32,
    },
    /// Extend a lease; answer with [`Input::Renewed`].
    Renew {
        /// The partition.
        partition: u32,
        /// The epoch held.
        epoch: u64,
    },
    /// Give a lease up. The database waits for a batch still running under
    /// it to commit or roll back; no answer is needed.
    Release {
        /// The partition.
        partition: u32,
        /// The epoch held.
        epoch: u64,
    },
    /// Remove this worker's registration (after releasing everything).
    Leave,
    /// Tell every worker of the projection to sync now: a view shows dead a
    /// peer this worker watches (or would have), and nobody here announced
    /// it yet. No answer is needed.
    Announce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    epoch: u64,
    /// This worker's own-clock end of its belief.
    until: MonoTime,
}

/// One worker of a projection group.
///
/// Calling contract: `handle(now, input)` with every answer and a
/// `Tick` at `poll_timeout()`; after each, drain `poll_action()` and perform
/// the actions in order, answering those that need it before the next
/// round. Each round heartbeats and reads the view, releases what is over
/// this worker's fair share (or beyond the partition count), renews what it
/// keeps and claims free partitions up to its share.
/// After each step the driver may also publish
/// [`session_to_watch`](Self::session_to_watch) for a waiter whose wake-up
/// makes every worker sync, reported as [`Input::PeerSessionEnded`].
///
/// Beliefs are judged on the worker's own clock only against its own
/// earlier readings: a lease renewed in a round that began at `t` is used
/// until `t + ttl`, which ends no later than the database's expiry. The
/// fence in the database is what makes this safe; the belief only keeps a
/// worker from trying batches that would be refused.
#[derive(Debug, Clone)]
pub struct PartitionOwner {
    me: String,
    timing: OwnerTiming,
    held: BTreeMap<u32, Held>,
    next_round: MonoTime,
    round_started: MonoTime,
    /// A round is under way: its sync, claims or renewals are unanswered.
    /// The next round waits for it, so every answer belongs to the round
    /// whose start it is judged from.
    in_round: bool,
    outstanding: usize,
    /// A peer changed during the round: start the next one right after.
    again: bool,
    stopped: bool,
    partitions: u32,
    /// The peer session to wait on, from the last view.
    watch: Option<i64>,
    /// Sessions whose end this worker announced, latest last (a few).
    announced: VecDeque<i64>,
    /// Free partitions of this round's view beyond those claimed, lowest
    /// first: a claim lost to another worker is made up from here.
    spare: VecDeque<u32>,
    actions: VecDeque<Action>,
}

impl PartitionOwner {
    /// Worker `me`, which syncs at once.
    pub fn new(me: impl Into<String>, timing: OwnerTiming, now: MonoTime) -> Self {
        PartitionOwner {
            me: me.into(),
            timing,
            held: BTreeMap::new(),
            next_round: now,
            round_started: now,
            in_round: false,
            outstanding: 0,
            again: false,
            stopped: false,
            partitions: 0,
            watch: None,
            announced: VecDeque::new(),
            spare: VecDeque::new(),
            actions: VecDeque::new(),
        }
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.me
    }

    /// The partition count seen in the last view (0 before the first).
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Partitions this worker may run at `now`, with their epochs.
    pub fn owned(&self, now: MonoTime) -> Vec<(u32, u64)> {
        self.held
            .iter()
            .filter(|(_, h)| now < h.until)
            .map(|(p, h)| (*p, h.epoch))
            .collect()
    }

    /// [`Self::owned`] with the local time each belief ends.
    pub fn owned_until(&self, now: MonoTime) -> Vec<(u32, u64, MonoTime)> {
        self.held
            .iter()
            .filter(|(_, h)| now < h.until)
            .map(|(p, h)| (*p, h.epoch, h.until))
            .collect()
    }

    /// The epoch under which `partition` may be run at `now`.
    pub fn may_run(&self, now: MonoTime, partition: u32) -> Option<u64> {
        self.held
            .get(&partition)
            .filter(|h| now < h.until)
            .map(|h| h.epoch)
    }

    /// The session of the peer this worker should wait on (the next live
    /// worker in name order, see [`super::watch_ring`]), so that its death
    /// is heard at once; None once stopped, or when no peer has a session.
    /// The waiter tells every worker, this one included, to sync, and
    /// reports it with [`Input::PeerSessionEnded`]. A peer this worker
    /// watches, or would have, that a view shows dead without that report
    /// (it died before the waiter got to it: within milliseconds of joining,
    /// or while the waiter opened a connection) is announced by the machine
    /// itself ([`Action::Announce`]), so someone always tells the others.
    pub fn session_to_watch(&self) -> Option<i64> {
        self.watch.filter(|_| !self.stopped)
    }

    /// True once it released everything and left.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The next action to perform.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to feed the next `Tick`.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        if self.stopped {
            return None;
        }
        let expiry = self.held.values().map(|h| h.until).min();
        // During a round the next one waits for its answers, so the round's
        // own deadline is the timer, not the next round's start.
        let round = if self.in_round {
            self.round_started + self.timing.ttl
        } else {
            self.next_round
        };
        Some(expiry.map_or(round, |e| e.min(round)))
    }

    /// Feeds one input at `now`.
    pub fn handle(&mut self, now: MonoTime, input: Input) {
        if self.stopped {
            return;
        }
        match input {
            Input::Tick => {}
            Input::Viewed {
                partitions,
                workers,
                holders,
                sessions,
                ended,
            } => {
                // Only the dead worker's watcher-by-name announces: one
                // notice per death, not one per worker that saw it.
                let unannounced: Vec<i64> = ended
                    .iter()
                    .filter(|(name, key)| {
                        !self.announced.contains(key)
                            && watcher_of(name, &sessions) == Some(self.me.as_str())
                    })
                    .map(|(_, key)| *key)
                    .collect();
                if !unannounced.is_empty() {
                    self.actions.push_back(Action::Announce);
                    for key in unannounced {
                        self.remember_announced(key);
                    }
                }
                self.watch = session_to_watch(&self.me, &sessions);
                self.on_viewed(partitions, &workers, &holders);
            }
            Input::Claimed { partition, epoch } => {
                match epoch {
                    Some(epoch) => {
                        let until = self.round_started + self.timing.ttl;
                        self.held.insert(partition, Held { epoch, until });
                    }
                    // Another worker took it since the view: workers woken
                    // by the same notice claim from the same free list, and
                    // one that stopped at its first loss would wait a
                    // heartbeat for its share. Each loss means someone else
                    // got the partition, so this ends with the free list.
                    None => {
                        if let Some(next) = self.spare.pop_front() {
                            self.push_request(Action::Claim { partition: next });
                        }
                    }
                }
                self.answered();
            }
            Input::Renewed {
                partition,
                epoch,
                held,
            } => self.on_renewed(partition, epoch, held),
            Input::Fenced { partition, epoch } => {
                if self.held.get(&partition).is_some_and(|h| h.epoch == epoch) {
                    self.held.remove(&partition);
                }
            }
            // The announcement wakes this worker too.
            Input::PeerSessionEnded { key } => self.remember_announced(key),
            Input::PeerChanged => {
                if self.in_round {
                    // The round under way may have read the view before the
                    // change: run another as soon as it ends.
                    self.again = true;
                } else {
                    self.next_round = self.next_round.min(now);
                }
            }
            Input::Failed => self.end_round(),
            Input::Shutdown => return self.shut_down(),
        }
        self.on_time(now);
    }

    fn on_time(&mut self, now: MonoTime) {
        // A belief past its end is dropped: the database may hand the
        // partition to someone else from now on.
        self.held.retain(|_, h| now < h.until);
        if self.in_round && now >= self.round_started + self.timing.ttl {
            // Answers that never came: give the round up.
            self.end_round();
        }
        if now >= self.next_round && !self.in_round {
            self.in_round = true;
            self.outstanding = 1;
            self.round_started = now;
            self.next_round = now + self.timing.heartbeat;
            self.actions.push_back(Action::Sync);
        }
    }

    /// Keeps the last few announced sessions: a dead worker is listed for
    /// at most a ttl, and few die within one.
    fn remember_announced(&mut self, key: i64) {
        if self.announced.len() == 32 {
            self.announced.pop_front();
        }
        self.announced.push_back(key);
    }

    fn answered(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.outstanding == 0 {
            self.in_round = false;
            if std::mem::take(&mut self.again) {
                self.next_round = self.round_started;
            }
        }
    }

    /// Ends the round early: its unsent claims and renewals are dropped
    /// (a lease not renewed simply runs out); releases still go out.
    fn end_round(&mut self) {
        self.actions
            .retain(|a| !matches!(a, Action::Claim { .. } | Action::Renew { .. }));
        self.spare.clear();
        self.in_round = false;
        self.outstanding = 0;
    }

    fn push_request(&mut self, action: Action) {
        self.outstanding += 1;
        self.actions.push_back(action);
    }

    fn on_viewed(&mut self, partitions: u32, workers: &[String], holders: &BTreeMap<u32, Holder>) {
        self.partitions = partitions;
        // The database is the authority: a lease it no longer shows under
        // this worker's epoch was freed (a repartition) or ran out. Dropping
        // the belief is always safe, and lets the rule below claim it again
        // in this round instead of the next.
        let me = self.me.clone();
        self.held.retain(|p, h| {
            holders
                .get(p)
                .is_some_and(|x| x.worker == me && x.epoch == h.epoch)
        });
        // Leases under this name that this worker does not hold belong to an
        // earlier incarnation (or to a claim whose answer was lost): free
        // them now instead of leaving them to expire.
        for (p, h) in holders {
            let mine_now = self.held.get(p).is_some_and(|held| held.epoch == h.epoch);
            if h.worker == self.me && !mine_now {
                self.actions.push_back(Action::Release {
                    partition: *p,
                    epoch: h.epoch,
                });
            }
        }
        // What the fair-share rule sees: this worker's own holdings as it
        // believes them, everyone else's as the database shows them.
        let mut owners: BTreeMap<u32, String> = holders
            .iter()
            .filter(|(_, h)| h.worker != self.me)
            .map(|(p, h)| (*p, h.worker.clone()))
            .collect();
        for p in self.held.keys() {
            owners.insert(*p, self.me.clone());
        }
        let beyond: Vec<u32> = self.held.range(partitions..).map(|(p, _)| *p).collect();
        for p in beyond {
            self.release(p);
        }
        let steps = decide(&self.me, partitions, workers, &owners);
        let claimed: Vec<u32> = steps
            .iter()
            .filter_map(|m| match m {
                Move::Claim(p) => Some(*p),
                Move::Release(_) => None,
            })
            .collect();
        // Free as decide() judges it: no live owner.
        self.spare = if claimed.is_empty() {
            VecDeque::new()
        } else {
            (0..partitions)
                .filter(|p| !claimed.contains(p))
                .filter(|p| !owners.get(p).is_some_and(|o| workers.contains(o)))
                .collect()
        };
        for step in steps {
            match step {
                Move::Release(p) => self.release(p),
                Move::Claim(p) => self.push_request(Action::Claim { partition: p }),
            }
        }
        let renewals: Vec<Action> = self
            .held
            .iter()
            .map(|(p, h)| Action::Renew {
                partition: *p,
                epoch: h.epoch,
            })
            .collect();
        for renewal in renewals {
            self.push_request(renewal);
        }
        // The sync itself is answered.
        self.answered();
    }

    fn on_renewed(&mut self, partition: u32, epoch: u64, held: bool) {
        self.answered();
        let Some(h) = self.held.get_mut(&partition).filter(|h| h.epoch == epoch) else {
            return;
        };
        if held {
            h.until = self.round_started + self.timing.ttl;
        } else {
            self.held.remove(&partition);
        }
    }

    fn release(&mut self, partition: u32) {
        if let Some(h) = self.held.remove(&partition) {
            self.actions.push_back(Action::Release {
                partition,
                epoch: h.epoch,
            });
        }
    }

    fn shut_down(&mut self) {
        self.end_round();
        let all: Vec<u32> = self.held.keys().copied().collect();
        for p in all {
            self.release(p);
        }
        self.actions.push_back(Action::Leave);
        self.stopped = true;
    }
}
